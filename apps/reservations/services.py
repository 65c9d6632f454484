"""Write services of the catalog (venues, sections, seats, events)."""

from django.db import transaction

from apps.reservations.layouts import (
    Layout,
    LayoutError,
    SeatGrid,
    SeatSpec,
    grid_seats,
)
from apps.reservations.models import Event, PriceCategory, Seat, Section, Venue


@transaction.atomic
def section_seats_generate(*, section: Section, grid: SeatGrid, replace: bool = False) -> int:
    """Create the seats of ``section`` from ``grid``; return how many were created.

    Refuses to touch a section that already has seats unless ``replace``, and never
    replaces the seats of a venue with an event past draft: those seats are on sale.
    """
    venue = section.venue
    seats = grid_seats(section=section.name, grid=grid, focal=(venue.focal_x, venue.focal_y))
    if section.seats.exists():
        if not replace:
            raise LayoutError([f"section {section.name} already has seats"])
        _check_layout_editable(venue)
        section.seats.all().delete()
    clashes = Seat.objects.filter(venue=venue, key__in=[s.key for s in seats])
    if clashes.exists():
        raise LayoutError([f"seat key {clashes.first().key!r} already exists in this venue"])
    _seats_create(venue=venue, sections={section.name: section}, seats=seats)
    return len(seats)


@transaction.atomic
def venue_layout_import(*, layout: Layout) -> Venue:
    """Create a new venue with every category, section and seat of ``layout``."""
    if Venue.objects.filter(name=layout.venue_name).exists():
        raise LayoutError([f"a venue named {layout.venue_name!r} already exists"])
    venue = Venue.objects.create(
        name=layout.venue_name, focal_x=layout.focal[0], focal_y=layout.focal[1]
    )
    categories = {
        name: PriceCategory.objects.create(venue=venue, name=name, price=price, color=color)
        for name, price, color in layout.categories
    }
    sections = {
        name: Section.objects.create(venue=venue, name=name, category=categories[category])
        for name, category in layout.sections
    }
    _seats_create(venue=venue, sections=sections, seats=layout.seats)
    return venue


def _seats_create(*, venue: Venue, sections: dict[str, Section], seats: list[SeatSpec]) -> None:
    Seat.objects.bulk_create(
        (
            Seat(
                venue=venue,
                section=sections[s.section],
                row=s.row,
                number=s.number,
                key=s.key,
                x=s.x,
                y=s.y,
                accessible=s.accessible,
            )
            for s in seats
        ),
        batch_size=2000,
    )


def _check_layout_editable(venue: Venue) -> None:
    if venue.events.exclude(sale_status=Event.SaleStatus.DRAFT).exists():
        raise LayoutError(
            [f"{venue} has events on sale or closed: its seats can no longer be changed"]
        )
