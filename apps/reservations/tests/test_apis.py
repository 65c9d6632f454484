import gzip
import json

import pytest

from apps.reservations import selectors, services
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def test_event_list_shows_events_on_sale_but_not_drafts(client):
    on_sale = EventFactory()
    EventFactory(sale_status=Event.SaleStatus.DRAFT)

    response = client.get("/api/events/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert [e["id"] for e in response.json()] == [on_sale.pk]
    assert response.json()[0]["venue"] == on_sale.venue.name


def test_unknown_event_is_a_404_in_the_error_shape(client):
    draft = EventFactory(sale_status=Event.SaleStatus.DRAFT)
    response = client.get(f"/api/events/{draft.pk}", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_event_is_read_from_the_cache_and_every_change_shows(
    client, sale, django_assert_num_queries, django_capture_on_commit_callbacks
):
    """GET /api/events/{id} is asked by every buyer: one Postgres read, then the cache,
    which each way an event or its venue changes empties once the change commits."""
    event = EventFactory(name="First night", venue=sale.venue, sale_status=Event.SaleStatus.DRAFT)
    url = f"/api/events/{event.pk}"

    def get() -> dict | None:
        response = client.get(url, HTTP_ACCEPT="application/json")
        return response.json() if response.status_code == 200 else None

    assert get() is None  # a draft: cached as missing, then opened below
    with django_capture_on_commit_callbacks(execute=True):
        services.event_open_sale(event=event)
    assert get()["sale_status"] == "on_sale"
    with django_assert_num_queries(0):
        assert get() == {
            "id": event.pk,
            "name": "First night",
            "starts_at": event.starts_at.isoformat().replace("+00:00", "Z"),
            "sale_status": "on_sale",
            "venue": sale.venue.name,
            "hold_ttl_seconds": event.hold_ttl_seconds,
            "max_seats_per_hold": event.max_seats_per_hold,
        }

    browsable = client.get(url, HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and b"First night" in browsable.content

    with django_capture_on_commit_callbacks(execute=True):
        event.name = "Opening night"
        event.save()  # the admin's way
    assert get()["name"] == "Opening night"
    with django_capture_on_commit_callbacks(execute=True):
        event.venue.name = "Main hall"
        event.venue.save()
    assert get()["venue"] == "Main hall"
    with django_capture_on_commit_callbacks(execute=True):
        services.event_close_sale(event=event)  # a queryset update: no signal of its own
    assert get()["sale_status"] == "closed"
    with django_capture_on_commit_callbacks(execute=True):
        event.delete()
    assert get() is None


def test_a_reader_never_caches_what_a_change_replaced(
    sale, monkeypatch, django_capture_on_commit_callbacks
):
    """A change that lands while a reader is between the cache and Postgres (the moment a
    sale opens, with every buyer asking) is not undone by that reader storing its row."""
    event = EventFactory(venue=sale.venue, sale_status=Event.SaleStatus.DRAFT)
    real_event_list = selectors.event_list

    def change_meanwhile():  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            selectors.event_cache_forget(event_id=event.pk)
        return real_event_list()

    monkeypatch.setattr(selectors, "event_list", change_meanwhile)
    assert selectors.event_public_get(event_id=event.pk) is None  # the draft it read

    cached, _ = selectors.redis_client_get().mget(selectors._event_cache_keys(event.pk))
    assert cached is None  # not stored: the next reader asks Postgres again


def test_api_root_is_browsable(client):
    response = client.get("/api/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Seats API" in response.content or b"Api Root" in response.content


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/events/" in response.json()["paths"]


def test_layout_draws_every_seat_with_its_section_category_and_position(client, sale):
    response = client.get(f"/api/events/{sale.pk}/layout", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    body = response.json()
    assert body["event_id"] == sale.pk
    assert body["currency"] == "EUR"
    prices = {c["id"]: c["price"] for c in body["categories"]}
    sections = {s["name"]: s for s in body["sections"]}
    assert set(sections) == {"A", "V"}
    assert prices[sections["A"]["category_id"]] == "50.00"
    assert prices[sections["V"]["category_id"]] == "80.00"
    assert [seat[:3] for seat in sections["A"]["seats"]] == [
        ["A-1-1", "1", 1],
        ["A-1-2", "1", 2],
        ["A-1-3", "1", 3],
    ]
    key, row, number, x, y, accessible = sections["V"]["seats"][0]
    assert (key, row, number, accessible) == ("V-1-1", "1", 1, False)
    assert isinstance(x, float) and isinstance(y, float)


def test_layout_is_cacheable_and_revalidates_by_etag(client, sale):
    first = client.get(f"/api/events/{sale.pk}/layout", HTTP_ACCEPT="application/json")
    assert "max-age=300" in first["Cache-Control"]
    assert "public" in first["Cache-Control"]

    again = client.get(
        f"/api/events/{sale.pk}/layout",
        HTTP_ACCEPT="application/json",
        HTTP_IF_NONE_MATCH=first["ETag"],
    )

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]


def test_layout_is_gzipped_when_accepted(client, sale):
    plain = client.get(f"/api/events/{sale.pk}/layout", HTTP_ACCEPT="application/json")
    response = client.get(
        f"/api/events/{sale.pk}/layout",
        HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_ENCODING="gzip, deflate, br",
    )

    assert "Content-Encoding" not in plain
    assert response["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.content)) == plain.json()
    assert "Accept-Encoding" in response["Vary"]


def test_layout_is_browsable(client, sale):
    response = client.get(f"/api/events/{sale.pk}/layout", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"A-1-1" in response.content
    assert "Content-Encoding" not in response


def test_layout_of_a_draft_or_unknown_event_is_a_404(client):
    draft = EventFactory(sale_status=Event.SaleStatus.DRAFT)
    for event_id in (draft.pk, draft.pk + 1000):
        response = client.get(f"/api/events/{event_id}/layout", HTTP_ACCEPT="application/json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
