import io
import json

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.persistence.tests.helpers import outbox_envelopes, reserve
from apps.reservations import services
from apps.reservations.models import Event, Seat, Venue
from apps.reservations.tests.factories import EventFactory, SeatFactory
from apps.stats.services import stats_apply

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    seat = SeatFactory()
    event = EventFactory(venue=seat.venue)
    return {
        "venue": seat.venue,
        "pricecategory": seat.section.category,
        "section": seat.section,
        "seat": seat,
        "event": event,
    }


def _admin_urls(catalog, staff):
    request = RequestFactory().get("/")
    request.user = staff
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"admin:{meta.app_label}_{meta.model_name}"
        yield reverse(f"{base}_changelist")
        if model_admin.has_add_permission(request):  # some admins are read-only
            yield reverse(f"{base}_add")
        obj = catalog.get(meta.model_name)
        if obj is not None:
            yield reverse(f"{base}_change", args=[obj.pk])


def test_every_admin_page_renders_for_staff(admin_client, admin_user, catalog):
    urls = list(_admin_urls(catalog, admin_user))
    assert len(urls) >= 15
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_admin_pages_refuse_anonymous_users(client, admin_user, catalog):
    for url in _admin_urls(catalog, admin_user):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))


def test_generate_seats_from_the_admin(admin_client, catalog):
    Event.objects.filter(pk=catalog["event"].pk).update(sale_status=Event.SaleStatus.DRAFT)
    section = catalog["section"]
    section.seats.all().delete()
    url = reverse("admin:reservations_section_generate", args=[section.pk])
    form = {
        "rows": 4,
        "seats_per_row": 5,
        "layout": "offset",
        "row_labels": "numbers",
        "x": 0,
        "y": 0,
        "spacing": 10,
        "row_spacing": 12,
        "radius": 100,
        "angle": 90,
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302
    assert section.seats.count() == 20


def test_generate_seats_shows_the_error_and_writes_nothing(admin_client, catalog):
    Event.objects.filter(pk=catalog["event"].pk).update(sale_status=Event.SaleStatus.DRAFT)
    section = catalog["section"]
    section.seats.all().delete()
    url = reverse("admin:reservations_section_generate", args=[section.pk])
    form = {
        "rows": -4,
        "seats_per_row": 5,
        "layout": "grid",
        "row_labels": "numbers",
        "x": 0,
        "y": 0,
        "spacing": 10,
        "row_spacing": 12,
        "radius": 100,
        "angle": 90,
    }

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "rows must be between 1 and" in response.content.decode()
    assert not section.seats.exists()


def _upload(data: bytes, name="layout.json"):
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def test_export_and_import_a_layout_from_the_admin(admin_client, catalog):
    venue = catalog["venue"]
    exported = admin_client.get(reverse("admin:reservations_venue_export", args=[venue.pk]))
    assert exported["Content-Disposition"].startswith("attachment;")
    layout = json.loads(exported.content)
    layout["venue"]["name"] = "Imported Hall"

    response = admin_client.post(
        reverse("admin:reservations_venue_import"),
        {"file": _upload(json.dumps(layout).encode())},
    )

    assert response.status_code == 302
    imported = Venue.objects.get(name="Imported Hall")
    assert list(imported.seats.values_list("key", flat=True)) == [catalog["seat"].key]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not valid JSON"),
        (
            json.dumps({"venue": {"name": "New"}, "categories": [], "sections": [],
                        "seats": [{"section": "A", "row": "1", "number": 1, "x": 0, "y": 0}]}
                       ).encode(),
            "unknown section &#x27;A&#x27;",
        ),
    ],
)  # fmt: skip
def test_a_bad_layout_upload_is_explained_and_writes_nothing(
    admin_client, catalog, payload, message
):
    before = Seat.objects.count()
    response = admin_client.post(
        reverse("admin:reservations_venue_import"), {"file": _upload(payload)}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Venue.objects.count() == 1
    assert Seat.objects.count() == before


def _box_office_row(section: str, label: str, counts: tuple) -> str:
    """One row of the event page's box office table, as the template renders it."""
    stats = ("total", "free", "held", "reserved", "blocked", "revenue")
    cells = "".join(f'<td data-stat="{n}">{v}</td>' for n, v in zip(stats, counts, strict=True))
    return f'<tr data-section="{section}"><th scope="row">{label}</th>{cells}</tr>'


def test_the_event_page_shows_the_sales_figures_per_section(
    admin_client, sale, django_capture_on_commit_callbacks
):
    reserve(sale, ["A-1-1", "V-1-1"])
    services.hold_create(event_id=sale.pk, holder="user:2", seats=["A-1-2"])
    services.seats_block(event=sale, seats=["A-1-3"])
    # Projected as the stats worker does, the hot copy in Redis refreshed after commit.
    with django_capture_on_commit_callbacks(execute=True):
        stats_apply(envelopes=outbox_envelopes(sale))

    response = admin_client.get(reverse("admin:reservations_event_change", args=[sale.pk]))

    assert response.status_code == 200
    sections = dict(sale.venue.sections.values_list("name", "id"))
    assertContains(
        response, _box_office_row(sections["A"], "A", (3, 0, 1, 1, 1, "50.00")), html=True
    )
    assertContains(
        response, _box_office_row(sections["V"], "V", (1, 0, 0, 1, 0, "80.00")), html=True
    )
    assertContains(
        response, _box_office_row("event", "Whole event", (4, 0, 1, 2, 1, "130.00")), html=True
    )
    # The page's script refreshes them from the stats API.
    assertContains(response, f'data-stats-url="/api/stats/event/{sale.pk}"')
    assertContains(response, "reservations/admin/box_office.js")


def test_an_event_never_on_sale_says_it_has_no_figures_yet(admin_client, catalog):
    event = catalog["event"]
    event.sale_status = Event.SaleStatus.DRAFT
    event.save()

    response = admin_client.get(reverse("admin:reservations_event_change", args=[event.pk]))

    assertContains(response, "No figures yet: this event has never been on sale.")
    assertNotContains(response, "data-stats-url")
    assertNotContains(response, "box_office.js")
