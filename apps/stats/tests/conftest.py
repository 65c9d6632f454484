from decimal import Decimal

import pytest

from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory, SeatFactory, SectionFactory


@pytest.fixture
def sale(db) -> Event:
    """An event on sale in Redis: seats A-1-1, A-1-2, A-1-3 at 50.00 and V-1-1 at 80.00."""
    section = SectionFactory(name="A", category__price=Decimal("50.00"))
    for number in (1, 2, 3):
        SeatFactory(section=section, row="1", number=number)
    vip = SectionFactory(name="V", venue=section.venue, category__price=Decimal("80.00"))
    SeatFactory(section=vip, row="1", number=1)
    event = EventFactory(venue=section.venue, sale_status=Event.SaleStatus.DRAFT)
    services.event_open_sale(event=event)
    return event
