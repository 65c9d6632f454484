import gzip
import json

import pytest
from django.test import Client

from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.selectors import event_seat_places, event_sections
from apps.reservations.tests.factories import EventFactory, SectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    a = SectionFactory(name="A")
    b = SectionFactory(name="B", venue=a.venue, category=a.category)
    services.section_seats_generate(section=a, grid=SeatGrid(rows=11, seats_per_row=3))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=1, seats_per_row=2))
    event = EventFactory(venue=a.venue, sale_status=Event.SaleStatus.DRAFT)
    event_seat_places.cache_clear()
    event_sections.cache_clear()
    services.event_open_sale(event=event)
    return event


def _seats(client, event, query=""):
    response = client.get(f"/api/events/{event.pk}/seats{query}", HTTP_ACCEPT="application/json")
    return response.status_code, response.json()


def _states(body):
    return {
        (section["name"], row["row"]): row["states"]
        for section in body["sections"]
        for row in section["rows"]
    }


def test_snapshot_lists_every_seat_with_its_state_and_seq(event):
    buyer, other = Client(), Client()
    buyer.post(f"/api/events/{event.pk}/holds", {"seats": ["A-2-1", "A-2-3"]}, "application/json")
    hold = other.post(f"/api/events/{event.pk}/holds", {"seats": ["B-1-2"]}, "application/json")
    other.post(f"/api/holds/{hold.json()['hold_token']}/reserve")
    services.seats_block(event=event, seats=["A-11-2"])

    status, body = _seats(buyer, event)

    assert status == 200
    assert body["seq"] == 4
    assert body["sale_status"] == "on_sale"
    states = _states(body)
    assert list(states)[:3] == [("A", "1"), ("A", "2"), ("A", "3")]  # "10" sorts after "9"
    assert list(states)[-2:] == [("A", "11"), ("B", "1")]
    assert states[("A", "2")] == "mfm"  # the buyer's own hold
    assert states[("B", "1")] == "fr"
    assert states[("A", "11")] == "fbf"
    assert sum(len(s) for s in states.values()) == 35
    assert body["sections"][0]["rows"][0]["numbers"] == [1, 2, 3]

    _, seen_by_other = _seats(other, event)
    assert _states(seen_by_other)[("A", "2")] == "hfh"


def test_an_expired_hold_shows_as_free(event, clock):
    Client().post(f"/api/events/{event.pk}/holds", {"seats": ["A-1-1"]}, "application/json")
    clock.advance(event.hold_ttl_seconds * 1000 + 1)
    assert _states(_seats(Client(), event)[1])[("A", "1")] == "fff"


def test_section_filter(event):
    section_b = event.venue.sections.get(name="B")
    status, body = _seats(Client(), event, f"?section={section_b.pk}")
    assert status == 200
    assert [s["name"] for s in body["sections"]] == ["B"]
    assert _seats(Client(), event, "?section=999999")[0] == 404
    assert _seats(Client(), event, "?section=x")[0] == 400


def test_unknown_or_draft_event_is_404_in_the_error_shape(event):
    draft = EventFactory(venue=event.venue, sale_status=Event.SaleStatus.DRAFT)
    for event_id in (draft.pk, 987654):
        response = Client().get(f"/api/events/{event_id}/seats", HTTP_ACCEPT="application/json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_snapshot_is_gzipped_when_the_client_accepts_it(event):
    response = Client().get(
        f"/api/events/{event.pk}/seats", HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_ENCODING="gzip",
    )  # fmt: skip
    assert response["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.content))["event_id"] == event.pk
