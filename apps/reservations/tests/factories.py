from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from apps.reservations.best_available import SeatPlace, seat_rows
from apps.reservations.models import Event, PriceCategory, Seat, Section, Venue


class VenueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Venue

    name = factory.Sequence(lambda n: f"Venue {n}")


class PriceCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceCategory

    venue = factory.SubFactory(VenueFactory)
    name = factory.Sequence(lambda n: f"Category {n}")
    price = Decimal("50.00")


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    venue = factory.SubFactory(VenueFactory)
    category = factory.SubFactory(PriceCategoryFactory, venue=factory.SelfAttribute("..venue"))
    name = factory.Sequence(lambda n: f"S{n}")


class SeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Seat

    section = factory.SubFactory(SectionFactory)
    venue = factory.SelfAttribute("section.venue")
    row = "1"
    number = factory.Sequence(lambda n: n + 1)
    key = factory.LazyAttribute(lambda s: f"{s.section.name}-{s.row}-{s.number}")
    x = factory.LazyAttribute(lambda s: s.number * 10.0)
    y = 0.0


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    venue = factory.SubFactory(VenueFactory)
    name = factory.Sequence(lambda n: f"Event {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    sale_status = Event.SaleStatus.ON_SALE


def seat_rows_from_keys(keys: list[str], focal: tuple[float, float] = (0.0, 0.0)) -> list:
    """The row index's rows for seat keys like "A-3-12" (section A, row 3, seat 12), for
    tests that load an event straight into Redis: a seat's x is its number, its y its row,
    and a section's id (and category id) the code of its first letter."""
    places = []
    for key in keys:
        section, row, number = key.rsplit("-", 2)
        places.append(
            SeatPlace(
                key, ord(section[0]), ord(section[0]), row, int(number), float(number), float(row)
            )
        )
    return seat_rows(places, focal)
