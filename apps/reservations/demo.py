"""The demo venue and event that `manage.py seed_demo` creates."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event, PriceCategory, Section, Venue
from apps.reservations.services import event_open_sale, section_seats_generate

DEMO_VENUE = "Demo Arena"
DEMO_EVENT = "Demo Concert"

# An arena around a stage at (0, 0): a floor in front, then two curved tiers of five
# sections each, fanned from 30° to 150° below the stage. 4,600 seats in all.
CATEGORIES = [
    ("Floor", Decimal("150.00"), "#d94a4a"),
    ("Lower", Decimal("95.00"), "#4a90d9"),
    ("Upper", Decimal("55.00"), "#5bb974"),
]
SECTIONS = [("FL", "Floor", SeatGrid(rows=10, seats_per_row=40, x=-195, y=150, spacing=10))]
SECTIONS += [
    (
        f"L{i + 1}",
        "Lower",
        SeatGrid(
            rows=20,
            seats_per_row=24,
            layout="curved",
            radius=490,
            angle=150 - 30 * i,
            row_labels="letters",
        ),
    )
    for i in range(5)
]
SECTIONS += [
    (
        f"U{i + 1}",
        "Upper",
        SeatGrid(
            rows=10,
            seats_per_row=36,
            layout="curved",
            radius=780,
            angle=150 - 30 * i,
            row_labels="letters",
        ),
    )
    for i in range(5)
]


def demo_seed() -> Event:
    """Create whatever part of the demo is missing; running it again changes nothing."""
    with transaction.atomic():
        event = _catalog_seed()
    # Through the service, so the seats are in the live inventory too. Loading again
    # keeps every seat's state, so re-seeding never undoes a sale.
    event_open_sale(event=event)
    return event


def _catalog_seed() -> Event:
    venue, _ = Venue.objects.get_or_create(name=DEMO_VENUE, defaults={"focal_x": 0, "focal_y": 0})
    categories = {
        name: PriceCategory.objects.get_or_create(
            venue=venue, name=name, defaults={"price": price, "color": color}
        )[0]
        for name, price, color in CATEGORIES
    }
    for name, category, grid in SECTIONS:
        section, _ = Section.objects.get_or_create(
            venue=venue, name=name, defaults={"category": categories[category]}
        )
        if not section.seats.exists():
            section_seats_generate(section=section, grid=grid)
    event, _ = Event.objects.get_or_create(
        venue=venue, name=DEMO_EVENT, defaults={"starts_at": timezone.now() + timedelta(days=30)}
    )
    return event
