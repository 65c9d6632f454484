"""A venue's layout (focal point, price categories, sections, seats) is frozen once an
event on it has left draft: the services and every admin page refuse to change it, with
the reason. What a process caches about a venue is forgotten when staff change it, and
the layout's memo follows a renamed venue (docs/architecture.md, "Changing a venue")."""

from decimal import Decimal

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.reservations import selectors, services
from apps.reservations.layouts import LayoutError, SeatGrid
from apps.reservations.models import Event, Seat, Section, Venue
from apps.reservations.tests.factories import EventFactory, SeatFactory, SectionFactory

pytestmark = pytest.mark.django_db

FROZEN = "can no longer be changed"


@pytest.fixture(params=[Event.SaleStatus.ON_SALE, Event.SaleStatus.CLOSED])
def frozen(request):
    """A venue with an event on sale (or closed): a section A with seat A-1-1."""
    seat = SeatFactory(section__name="A", row="1", number=1)
    event = EventFactory(venue=seat.venue, sale_status=request.param)
    return {"venue": seat.venue, "section": seat.section, "seat": seat, "event": event}


@pytest.fixture
def draft():
    seat = SeatFactory(section__name="A", row="1", number=1)
    event = EventFactory(venue=seat.venue, sale_status=Event.SaleStatus.DRAFT)
    return {"venue": seat.venue, "section": seat.section, "seat": seat, "event": event}


def layout_of(venue: Venue) -> tuple:
    venue.refresh_from_db()
    return (
        venue.focal_x,
        venue.focal_y,
        sorted(venue.price_categories.values_list("name", "price", "color")),
        sorted(venue.sections.values_list("name", "category_id")),
        sorted(venue.seats.values_list("key", "row", "number", "x", "y")),
    )


# --- services -------------------------------------------------------------------------------


def test_no_seat_can_be_added_to_a_frozen_venue(frozen):
    empty = SectionFactory(venue=frozen["venue"], name="B")
    before = layout_of(frozen["venue"])

    with pytest.raises(LayoutError, match=FROZEN):
        services.section_seats_generate(section=empty, grid=SeatGrid(rows=1, seats_per_row=3))

    assert layout_of(frozen["venue"]) == before


def test_a_draft_venue_stays_editable(draft):
    empty = SectionFactory(venue=draft["venue"], name="B")
    assert services.venue_layout_frozen(draft["venue"]) is None
    created = services.section_seats_generate(section=empty, grid=SeatGrid(rows=1, seats_per_row=3))
    assert created == 3


# --- the admin: seats, sections, price categories --------------------------------------------


def test_a_frozen_seat_is_shown_read_only_with_the_reason(admin_client, frozen):
    url = reverse("admin:reservations_seat_change", args=[frozen["seat"].pk])

    page = admin_client.get(url)

    assert page.status_code == 200
    assertContains(page, FROZEN)
    assertNotContains(page, 'name="_save"')
    changed = admin_client.post(url, {"venue": frozen["venue"].pk, "key": "A-1-9"})
    assert changed.status_code == 403
    assert Seat.objects.get(pk=frozen["seat"].pk).key == "A-1-1"


def test_no_seat_or_section_can_be_added_to_a_frozen_venue(admin_client, frozen):
    venue, section = frozen["venue"], frozen["section"]
    before = layout_of(venue)
    seat = {
        "venue": venue.pk,
        "section": section.pk,
        "row": "1",
        "number": 2,
        "key": "A-1-2",
        "x": 20,
        "y": 0,
    }
    new_section = {"venue": venue.pk, "name": "B", "category": section.category_id}
    category = {"venue": venue.pk, "name": "Cheap", "price": "5.00", "color": "#000000"}

    for model, data in (("seat", seat), ("section", new_section), ("pricecategory", category)):
        response = admin_client.post(reverse(f"admin:reservations_{model}_add"), data)
        assert response.status_code == 200, model  # the form again, with the reason
        assertContains(response, FROZEN)

    assert layout_of(venue) == before


def test_a_frozen_section_or_price_category_cannot_change(admin_client, frozen):
    section, category = frozen["section"], frozen["section"].category
    before = layout_of(frozen["venue"])

    renamed = admin_client.post(
        reverse("admin:reservations_section_change", args=[section.pk]),
        {"venue": frozen["venue"].pk, "name": "Z", "category": category.pk},
    )
    repriced = admin_client.post(
        reverse("admin:reservations_pricecategory_change", args=[category.pk]),
        {"venue": frozen["venue"].pk, "name": category.name, "price": "1.00", "color": "#fff"},
    )

    assert (renamed.status_code, repriced.status_code) == (403, 403)
    assert layout_of(frozen["venue"]) == before


def test_nothing_of_a_frozen_venue_can_be_deleted(admin_client, frozen):
    seat, section = frozen["seat"], frozen["section"]
    for model, obj in (("seat", seat), ("section", section), ("pricecategory", section.category)):
        url = reverse(f"admin:reservations_{model}_delete", args=[obj.pk])
        assert admin_client.post(url, {"post": "yes"}).status_code == 403, model

    # The list's bulk delete: the confirmation says why, and deletes nothing.
    changelist = reverse("admin:reservations_seat_changelist")
    form = {"action": "delete_selected", "_selected_action": [seat.pk]}
    confirmation = admin_client.post(changelist, form)
    assertContains(confirmation, FROZEN)
    admin_client.post(changelist, {**form, "post": "yes"})

    assert Seat.objects.filter(pk=seat.pk).exists()
    assert Section.objects.filter(pk=section.pk).exists()


def test_seat_generation_explains_why_it_is_refused(admin_client, frozen):
    empty = SectionFactory(venue=frozen["venue"], name="B")
    url = reverse("admin:reservations_section_generate", args=[empty.pk])

    assertContains(admin_client.get(url), FROZEN)
    form = {"rows": 2, "seats_per_row": 2, "layout": "grid", "row_labels": "numbers", "x": 0,
            "y": 0, "spacing": 10, "row_spacing": 12, "radius": 100, "angle": 90}  # fmt: skip
    response = admin_client.post(url, form)

    assertContains(response, FROZEN)
    assert not empty.seats.exists()


# --- the admin: the venue's page and its inlines ---------------------------------------------


def venue_form(venue: Venue, **changes: object) -> dict:
    """The venue page's POST: the venue, its price categories and its sections as they are,
    then ``changes``."""
    data: dict[str, object] = {"name": venue.name, "focal_x": venue.focal_x,
                               "focal_y": venue.focal_y}  # fmt: skip
    for prefix, rows, fields in (
        ("price_categories", venue.price_categories.all(), ("name", "price", "color")),
        ("sections", venue.sections.all(), ("name", "category")),
    ):
        rows = list(rows)
        data |= {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": len(rows),
                 f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}  # fmt: skip
        for i, row in enumerate(rows):
            data |= {f"{prefix}-{i}-id": row.pk, f"{prefix}-{i}-venue": venue.pk}
            for field in fields:
                value = getattr(row, f"{field}_id" if field == "category" else field)
                data[f"{prefix}-{i}-{field}"] = value
    return data | changes


def test_a_frozen_venue_may_be_renamed_and_nothing_else(admin_client, frozen):
    venue = frozen["venue"]
    url = reverse("admin:reservations_venue_change", args=[venue.pk])
    page = admin_client.get(url)
    assertContains(page, FROZEN)
    before = layout_of(venue)

    response = admin_client.post(
        url,
        venue_form(venue, name="Renamed Hall", focal_x=99, **{"sections-0-name": "Z"}),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert layout_of(venue) == before
    assert venue.name == "Renamed Hall"


def test_a_draft_venue_is_edited_on_its_page(
    admin_client, draft, django_capture_on_commit_callbacks
):
    venue, event = draft["venue"], draft["event"]
    # What a process remembers of the venue, read before the change...
    assert selectors.event_sections(event_id=event.pk) == {draft["section"].pk: "A"}
    url = reverse("admin:reservations_venue_change", args=[venue.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, venue_form(venue, focal_x=5, **{"sections-0-name": "Z"}))

    assert response.status_code == 302, response.content.decode()[:2000]
    venue.refresh_from_db()
    assert venue.focal_x == 5
    # ...is forgotten once the change commits.
    assert selectors.event_sections(event_id=event.pk) == {draft["section"].pk: "Z"}


def test_an_event_past_draft_keeps_its_venue(admin_client, frozen, draft):
    on_sale = reverse("admin:reservations_event_change", args=[frozen["event"].pk])
    still_draft = reverse("admin:reservations_event_change", args=[draft["event"].pk])
    assertNotContains(admin_client.get(on_sale), 'name="venue"')
    assertContains(admin_client.get(still_draft), 'name="venue"')


# --- per-process caches ---------------------------------------------------------------------


def test_generating_seats_forgets_what_the_process_remembers(
    draft, django_capture_on_commit_callbacks
):
    event = draft["event"]
    places, _ = selectors.event_seat_places(event_id=event.pk)
    assert [p.key for p in places] == ["A-1-1"]
    empty = SectionFactory(venue=draft["venue"], name="B")

    with django_capture_on_commit_callbacks(execute=True):
        services.section_seats_generate(section=empty, grid=SeatGrid(rows=1, seats_per_row=2))

    places, _ = selectors.event_seat_places(event_id=event.pk)
    assert sorted(p.key for p in places) == ["A-1-1", "B-1-1", "B-1-2"]


def test_a_price_change_is_forgotten_too(draft, django_capture_on_commit_callbacks):
    event, category = draft["event"], draft["section"].category
    assert selectors.event_seat_prices(event_id=event.pk) == {"A-1-1": category.price}

    with django_capture_on_commit_callbacks(execute=True):
        category.price = Decimal("12.50")
        category.save()

    assert selectors.event_seat_prices(event_id=event.pk) == {"A-1-1": Decimal("12.50")}


def test_the_layout_memo_follows_a_renamed_venue_in_every_process(draft):
    """Another process's memo is not forgotten by this one's signals: its key carries the
    venue's name, which it reads afresh with the public event (event_public_get)."""
    event, venue = draft["event"], draft["venue"]
    old = selectors.event_layout(event_id=event.pk, venue_name=venue.name)
    Venue.objects.filter(pk=venue.pk).update(name="New Name")  # no signal, as elsewhere

    new = selectors.event_layout(event_id=event.pk, venue_name="New Name")

    assert (old.body["venue"], new.body["venue"]) == (venue.name, "New Name")
    assert old.etag != new.etag
