"""The waiting room over HTTP (docs/api.md, Waiting room), and the pass it gives to the
buyer commands: the Django test client through the middleware, DRF, the room scripts and
the command scripts, against real Redis. Each Client is its own browser, hence its own
buyer; time is ``inventory.clock_ms``, moved by hand, and admissions are the ticker's
``services.rooms_advance()``."""

import pytest
from django.conf import settings
from django.test import Client

from apps.reservations.errors import NotAdmitted
from apps.reservations.models import Event
from apps.reservations.redis import inventory
from apps.reservations.tests.factories import EventFactory
from apps.waitingroom.passes import pass_cookie_name
from apps.waitingroom.selectors import room_figures
from apps.waitingroom.tests.helpers import PASS_MINUTES, START_MS, browser, iso, post, tick

pytestmark = pytest.mark.django_db


def join(client: Client, event: Event, **extra: object):
    return post(client, f"/api/events/{event.pk}/room", **extra)


def look(client: Client, event: Event) -> dict:
    response = client.get(f"/api/events/{event.pk}/room")
    assert response.status_code == 200
    return response.json()


def take_pass(client: Client, event: Event, **extra: object):
    return post(client, f"/api/events/{event.pk}/room/pass", **extra)


def hold(client: Client, event: Event, seats: list[str]):
    return post(client, f"/api/events/{event.pk}/holds", {"seats": seats})


def admitted_buyer(event: Event, clock) -> Client:
    """A browser that joined at the start, was admitted by the next tick and took its pass."""
    clock.now = max(clock.now, START_MS)
    client = browser()
    assert join(client, event).status_code == 200
    tick(clock)
    assert look(client, event)["place"]["admitted"]
    assert take_pass(client, event).status_code == 200
    return client


def inventory_state(event: Event) -> tuple[int, dict, dict]:
    """Everything a command could change: seq, seat states, holds."""
    snap = inventory.inventory_snapshot(event_id=event.pk)
    return snap.seq, snap.state, snap.holds


def refused_not_admitted(response) -> bool:
    return response.status_code == 403 and response.json() == {
        "code": "not_admitted",
        "detail": NotAdmitted.default_detail,
    }


# --- joining and looking ------------------------------------------------------------------


def test_joining_makes_the_session_and_one_place_per_buyer(room, clock):
    clock.now = START_MS
    alice = Client()  # no cookie yet

    first = join(alice, room.event)

    assert first.status_code == 200
    assert settings.SESSION_COOKIE_NAME in alice.cookies  # the join made the session
    assert settings.CSRF_COOKIE_NAME in alice.cookies  # and handed out the CSRF token
    body = first.json()
    assert (body["event_id"], body["state"], body["drawn"]) == (room.event_id, "open", True)
    assert (body["sale_starts_at"], body["serving"], body["waiting"]) == (iso(START_MS), 0, 1)
    assert body["rate_per_minute"] == 60
    assert body["place"] == {
        "ticket": 1,
        "position": 1,
        "ahead": 0,
        "eta_seconds": 1,
        "admitted": False,
        "pass_expires_at": None,
    }
    # Joining again (a reload, a second tab) keeps the place.
    again = join(alice, room.event).json()
    assert (again["place"]["ticket"], again["waiting"]) == (1, 1)
    bob = join(Client(), room.event).json()
    assert (bob["place"]["ticket"], bob["place"]["position"], bob["place"]["ahead"]) == (2, 2, 1)
    assert room_figures(event_id=room.event_id)["waiting"] == 2


def test_looking_shows_the_place_and_makes_no_session(room, clock):
    alice = browser()
    early = join(alice, room.event).json()  # a minute before the start: no ticket yet
    assert (early["state"], early["drawn"], early["place"]["ticket"]) == ("before", False, None)
    assert early["place"]["position"] is None

    visitor = Client()
    seen = look(visitor, room.event)
    assert (seen["state"], seen["waiting"], seen["place"]) == ("before", 1, None)
    assert not visitor.cookies  # neither a session nor a CSRF cookie for a look

    clock.now = START_MS  # the first look after the start draws the early arrivals
    mine = look(alice, room.event)
    assert (mine["state"], mine["drawn"], mine["place"]["ticket"]) == ("open", True, 1)
    assert mine["place"]["position"] == 1
    assert look(visitor, room.event)["place"] is None
    assert not visitor.cookies
    assert room_figures(event_id=room.event_id)["waiting"] == 1  # looking took no place


def test_unknown_and_draft_events_are_404(sale, clock):
    draft = EventFactory(venue=sale.venue, sale_status=Event.SaleStatus.DRAFT)
    for event_id in (draft.pk, sale.pk + 1000):
        client = Client()
        responses = [
            client.get(f"/api/events/{event_id}/room"),
            post(client, f"/api/events/{event_id}/room"),
            post(client, f"/api/events/{event_id}/room/pass"),
        ]
        for response in responses:
            assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert settings.SESSION_COOKIE_NAME not in client.cookies


@pytest.fixture(params=["never had one", "turned off"])
def roomless(request, sale, clock, update) -> Event:
    """The sale without a waiting room on: it never had one, or its room was turned off."""
    if request.param == "turned off":
        room = request.getfixturevalue("room")
        clock.now = START_MS
        join(browser(), sale)
        update(room, enabled=False)
    return sale


def test_without_a_room_on_no_pass_is_needed(roomless):
    alice = browser()
    assert look(alice, roomless)["state"] == "off"
    joined = join(alice, roomless)
    assert joined.status_code == 200
    assert (joined.json()["state"], joined.json()["place"]) == ("off", None)
    for client in (alice, Client()):  # with a session or without one
        response = take_pass(client, roomless)
        assert response.status_code == 200
        assert response.json() == {"needed": False, "expires_at": None}
        assert pass_cookie_name(roomless.pk) not in response.cookies
    assert hold(alice, roomless, ["A-1-1"]).status_code == 201
    # The seat map app joins on every event it opens: a visitor gets no session for it.
    visitor = Client()
    joined = visitor.post(f"/api/events/{roomless.pk}/room", content_type="application/json")
    assert (joined.status_code, joined.json()["state"]) == (200, "off")
    assert settings.SESSION_COOKIE_NAME not in visitor.cookies


# --- the pass ---------------------------------------------------------------------------


def test_the_pass_before_ones_turn_is_409_with_the_room(room, clock):
    clock.now = START_MS
    alice, bob = browser(), browser()
    join(alice, room.event)
    join(bob, room.event)
    tick(clock)  # Alice's turn, not Bob's

    refused = take_pass(bob, room.event)

    assert (refused.status_code, refused.json()["code"]) == (409, "not_your_turn")
    assert pass_cookie_name(room.event_id) not in refused.cookies
    # The room as Bob sees it (GET .../room), so the page can go on waiting.
    assert refused.json()["room"] == look(bob, room.event)
    assert refused.json()["room"]["place"]["position"] == 1
    assert take_pass(alice, room.event).status_code == 200


def test_the_pass_without_a_place_is_404(room, clock):
    clock.now = START_MS
    for client in (browser(), Client()):
        refused = take_pass(client, room.event)
        assert (refused.status_code, refused.json()["code"]) == (404, "not_in_queue")
        assert pass_cookie_name(room.event_id) not in refused.cookies


def test_once_admitted_the_pass_is_an_httponly_cookie_that_lets_holds_through(room, clock):
    clock.now = START_MS
    alice = browser()
    join(alice, room.event)
    assert refused_not_admitted(hold(alice, room.event, ["A-1-1"]))  # a place is no pass
    tick(clock)
    place = look(alice, room.event)["place"]
    assert (place["position"], place["admitted"], place["pass_expires_at"]) == (0, True, None)

    response = take_pass(alice, room.event)

    expires_ms = clock.now + PASS_MINUTES * 60_000
    assert response.status_code == 200
    assert response.json() == {"needed": True, "expires_at": iso(expires_ms)}
    cookie = response.cookies[pass_cookie_name(room.event_id)]
    assert cookie["httponly"] is True
    assert (cookie["samesite"], cookie["path"]) == ("Lax", "/")
    assert int(cookie["max-age"]) == PASS_MINUTES * 60
    assert look(alice, room.event)["place"]["pass_expires_at"] == iso(expires_ms)
    # Taken again (another tab), it keeps its expiry.
    clock.now += 5_000
    assert take_pass(alice, room.event).json()["expires_at"] == iso(expires_ms)

    held = hold(alice, room.event, ["A-1-1"])

    assert held.status_code == 201
    token = held.json()["hold_token"]
    _, state, holds = inventory_state(room.event)
    assert state == {"A-1-1": f"h:{token}"}
    assert holds[token]["holder"].startswith("session:")


def test_taking_the_pass_needs_the_csrf_token(room, clock):
    clock.now = START_MS
    alice = Client(enforce_csrf_checks=True)
    assert join(alice, room.event).status_code == 200  # no cookie yet: nothing to ride on
    tick(clock)

    refused = take_pass(alice, room.event)

    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert pass_cookie_name(room.event_id) not in alice.cookies
    csrf = alice.cookies[settings.CSRF_COOKIE_NAME].value
    assert take_pass(alice, room.event, HTTP_X_CSRFTOKEN=csrf).status_code == 200
    assert pass_cookie_name(room.event_id) in alice.cookies


def test_without_the_pass_a_hold_is_refused_and_nothing_is_held(room, clock):
    clock.now = START_MS
    bob = browser()
    join(bob, room.event)
    tick(clock)  # admitted, but the pass not taken
    before = inventory_state(room.event)

    for body in ({"seats": ["A-1-1"]}, {"best": {"count": 2}}):
        response = post(bob, f"/api/events/{room.event_id}/holds", body)
        assert refused_not_admitted(response), response.content

    assert inventory_state(room.event) == before == (0, {}, {})
    seat_map = bob.get(f"/api/events/{room.event_id}/seats", HTTP_ACCEPT="application/json")
    rows = {s["name"]: s["rows"][0]["states"] for s in seat_map.json()["sections"]}
    assert rows == {"A": "fff", "V": "f"}


def test_a_pass_in_another_session_is_worth_nothing(room, clock):
    alice = admitted_buyer(room.event, clock)
    name = pass_cookie_name(room.event_id)
    stolen = alice.cookies[name].value
    mallory, stranger = browser(), Client()  # another session, and none yet
    mallory.cookies[name] = stolen
    stranger.cookies[name] = stolen
    forged = browser()
    forged.cookies[name] = stolen[:-4] + ("AAAA" if not stolen.endswith("AAAA") else "BBBB")

    for client in (mallory, stranger, forged):
        assert refused_not_admitted(hold(client, room.event, ["A-1-1"]))

    assert inventory_state(room.event)[1] == {}
    assert hold(alice, room.event, ["A-1-1"]).status_code == 201


def test_an_expired_pass_is_refused(room, clock):
    alice = admitted_buyer(room.event, clock)
    bob = browser()
    join(bob, room.event)  # waiting behind Alice
    expires_ms = clock.now + PASS_MINUTES * 60_000
    clock.now = expires_ms - 1
    assert hold(alice, room.event, ["A-1-1"]).status_code == 201

    clock.now = expires_ms

    assert refused_not_admitted(hold(alice, room.event, ["A-1-2"]))
    assert set(inventory_state(room.event)[1]) == {"A-1-1"}
    refused = take_pass(alice, room.event)
    assert (refused.status_code, refused.json()["code"]) == (410, "place_expired")
    # The place is spent: joining again is a new one, at the back.
    assert join(alice, room.event).json()["place"]["ticket"] == 3


def test_extend_release_and_reserve_need_the_pass_too(room, clock):
    alice = admitted_buyer(room.event, clock)
    token = hold(alice, room.event, ["A-1-1", "A-1-2"]).json()["hold_token"]
    name = pass_cookie_name(room.event_id)
    the_pass = alice.cookies.pop(name)
    before = inventory_state(room.event)

    for url, body in (
        (f"/api/holds/{token}/extend", None),
        (f"/api/holds/{token}/release", {}),
        (f"/api/holds/{token}/release", {"seats": ["A-1-2"]}),
        (f"/api/holds/{token}/reserve", None),
    ):
        assert refused_not_admitted(post(alice, url, body)), url

    assert inventory_state(room.event) == before
    alice.cookies[name] = the_pass
    assert post(alice, f"/api/holds/{token}/extend").status_code == 200
    released = post(alice, f"/api/holds/{token}/release", {"seats": ["A-1-2"]})
    assert (released.status_code, released.json()["seats"]) == (200, ["A-1-2"])
    reserved = post(alice, f"/api/holds/{token}/reserve")
    assert reserved.status_code == 201
    assert inventory_state(room.event)[1] == {"A-1-1": f"r:{reserved.json()['reservation_id']}"}


# --- abuse limits -------------------------------------------------------------------------


def test_new_places_per_address_are_limited(room, clock, settings):
    settings.SEATS_ROOM_PLACES_PER_ADDRESS = 2
    clock.now = START_MS
    first, second, third = browser(), browser(), browser()
    assert join(first, room.event).status_code == 200
    assert join(second, room.event).status_code == 200
    assert join(first, room.event).json()["place"]["ticket"] == 1  # its place: not a new one

    refused = join(third, room.event)

    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_places")
    assert 0 < int(refused["Retry-After"]) <= settings.SEATS_NEW_BUYERS_WINDOW_S
    assert room_figures(event_id=room.event_id)["waiting"] == 2
    elsewhere = join(third, room.event, REMOTE_ADDR="10.0.0.7")
    assert (elsewhere.status_code, elsewhere.json()["place"]["ticket"]) == (200, 3)


def test_new_sessions_per_address_are_limited_before_any_place(room, clock, settings):
    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 1
    settings.SEATS_ROOM_PLACES_PER_ADDRESS = 0
    clock.now = START_MS
    assert join(Client(), room.event).status_code == 200

    refused = join(Client(), room.event)  # a script dropping its cookies

    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_new_buyers")
    assert room_figures(event_id=room.event_id)["waiting"] == 1


# --- schema -----------------------------------------------------------------------------


def test_the_schema_lists_the_room_routes_and_components(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()

    def body_of(operation: dict) -> dict:
        return operation["responses"]["200"]["content"]["application/json"]["schema"]

    room = schema["paths"]["/api/events/{event_id}/room"]
    assert (
        body_of(room["get"])
        == body_of(room["post"])
        == {"$ref": "#/components/schemas/WaitingRoom"}
    )
    room_pass = schema["paths"]["/api/events/{event_id}/room/pass"]["post"]
    assert body_of(room_pass) == {"$ref": "#/components/schemas/WaitingRoomPass"}
    components = schema["components"]["schemas"]
    assert set(components["WaitingRoom"]["properties"]) == {
        "event_id",
        "state",
        "sale_starts_at",
        "drawn",
        "serving",
        "waiting",
        "rate_per_minute",
        "place",
    }
    assert set(components["WaitingRoomPass"]["properties"]) == {"needed", "expires_at"}
