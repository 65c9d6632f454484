import pytest

from apps.reservations.layouts import LayoutError, SeatGrid, layout_parse
from apps.reservations.models import Event, Seat, Venue
from apps.reservations.selectors import venue_layout_export
from apps.reservations.services import section_seats_generate, venue_layout_import
from apps.reservations.tests.factories import EventFactory, SectionFactory

pytestmark = pytest.mark.django_db


def test_generation_creates_the_grid_of_seats():
    section = SectionFactory(name="B")
    created = section_seats_generate(
        section=section, grid=SeatGrid(rows=3, seats_per_row=4, row_labels="letters")
    )
    assert created == 12
    keys = list(section.seats.order_by("row", "number").values_list("key", flat=True))
    assert keys[:5] == ["B-A-1", "B-A-2", "B-A-3", "B-A-4", "B-B-1"]
    assert set(Seat.objects.values_list("venue", flat=True)) == {section.venue_id}


def test_generation_refuses_negative_counts_and_writes_nothing():
    section = SectionFactory()
    with pytest.raises(LayoutError, match="rows must be between 1"):
        section_seats_generate(section=section, grid=SeatGrid(rows=-2, seats_per_row=5))
    assert not Seat.objects.exists()


def test_generation_does_not_overwrite_seats_unless_asked():
    section = SectionFactory()
    section_seats_generate(section=section, grid=SeatGrid(rows=1, seats_per_row=2))
    with pytest.raises(LayoutError, match="already has seats"):
        section_seats_generate(section=section, grid=SeatGrid(rows=5, seats_per_row=5))
    assert section.seats.count() == 2
    section_seats_generate(section=section, grid=SeatGrid(rows=2, seats_per_row=3), replace=True)
    assert section.seats.count() == 6


def test_seats_of_a_venue_on_sale_cannot_be_replaced():
    section = SectionFactory()
    section_seats_generate(section=section, grid=SeatGrid(rows=1, seats_per_row=2))
    EventFactory(venue=section.venue, sale_status=Event.SaleStatus.ON_SALE)
    with pytest.raises(LayoutError, match="can no longer be changed"):
        section_seats_generate(
            section=section, grid=SeatGrid(rows=1, seats_per_row=9), replace=True
        )
    assert section.seats.count() == 2


def test_export_then_import_gives_the_same_venue():
    section = SectionFactory(name="A", venue__name="Original", venue__focal_x=3.5)
    section_seats_generate(
        section=section, grid=SeatGrid(rows=2, seats_per_row=3, layout="curved", radius=50)
    )
    exported = venue_layout_export(venue=section.venue)
    exported["venue"]["name"] = "Copy"

    copy = venue_layout_import(layout=layout_parse(exported))

    again = venue_layout_export(venue=copy)
    again["venue"]["name"] = "Original"
    exported["venue"]["name"] = "Original"
    assert again == exported
    assert copy.focal_x == 3.5
    assert copy.seats.count() == 6


def test_importing_over_an_existing_venue_name_is_refused_and_writes_nothing():
    SectionFactory(venue__name="Hall")
    layout = layout_parse(
        {
            "venue": {"name": "Hall"},
            "categories": [{"name": "Std", "price": 10}],
            "sections": [{"name": "Z", "category": "Std"}],
            "seats": [{"section": "Z", "row": "1", "number": 1, "x": 0, "y": 0}],
        }
    )
    with pytest.raises(LayoutError, match="already exists"):
        venue_layout_import(layout=layout)
    assert Venue.objects.count() == 1
    assert not Seat.objects.exists()
