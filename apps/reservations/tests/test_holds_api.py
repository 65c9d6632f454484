"""The buyer and staff commands over HTTP (docs/api.md).

Real Postgres and Redis: the Django test client goes through the middleware, DRF, the
idempotency wrapper and the Lua scripts. Each Client is its own browser, hence its own
buyer. The venue:

    focal point (22, -20)
    A (Premium 120.00)  rows 1-2 × seats 1-6, x = 0..50,    y = 0 / 12
    B (Standard 40.00)  rows 1-2 × seats 1-6, x = 100..150, y = 0 / 12
    C (Standard 40.00)  row 1    × seats 1-4, x = 0..30,    y = 100
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token

from apps.core import idempotency
from apps.core.door import BuyerRateThrottle
from apps.core.http import MAX_COMMAND_BODY
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event, PriceCategory, Section
from apps.reservations.redis import inventory
from apps.reservations.tests.factories import (
    EventFactory,
    PriceCategoryFactory,
    SectionFactory,
    VenueFactory,
)

pytestmark = pytest.mark.django_db

T0 = 1_900_000_000_000  # a fixed "now" in ms; tests move it through `clock`
TTL_MS = 600_000


@dataclass
class Sale:
    event: Event
    premium: PriceCategory
    standard: PriceCategory
    a: Section
    b: Section
    c: Section

    @property
    def holds_url(self) -> str:
        return f"/api/events/{self.event.pk}/holds"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(inventory, "clock_ms", fake)
    return fake


def venue_with_sections() -> tuple[PriceCategory, PriceCategory, Section, Section, Section]:
    venue = VenueFactory(focal_x=22.0, focal_y=-20.0)
    premium = PriceCategoryFactory(venue=venue, name="Premium", price=Decimal("120.00"))
    standard = PriceCategoryFactory(venue=venue, name="Standard", price=Decimal("40.00"))
    a = SectionFactory(venue=venue, category=premium, name="A")
    b = SectionFactory(venue=venue, category=standard, name="B")
    c = SectionFactory(venue=venue, category=standard, name="C")
    services.section_seats_generate(section=a, grid=SeatGrid(rows=2, seats_per_row=6))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=2, seats_per_row=6, x=100))
    services.section_seats_generate(section=c, grid=SeatGrid(rows=1, seats_per_row=4, y=100))
    return premium, standard, a, b, c


@pytest.fixture
def sale(clock) -> Sale:
    premium, standard, a, b, c = venue_with_sections()
    event = EventFactory(
        venue=a.venue,
        sale_status=Event.SaleStatus.DRAFT,
        hold_ttl_seconds=TTL_MS // 1000,
        max_seats_per_hold=10,
    )
    services.event_open_sale(event=event)
    return Sale(event, premium, standard, a, b, c)


def buyer() -> Client:
    """A browser that already has a session (as after loading the seat map page).

    Also keeps its commands in their own throttle bucket: cookie-less first commands all
    share the bucket of the client address, 127.0.0.1 for every test client.
    """
    client = Client()
    client.session  # noqa: B018 - the property saves a session and sets its cookie
    return client


@pytest.fixture
def alice() -> Client:
    return buyer()


@pytest.fixture
def bob() -> Client:
    return buyer()


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user("boxoffice", is_staff=True))
    return client


def post(client: Client, url: str, body: object = None, **extra: object):
    """POST a JSON body; a str or bytes body is sent as is (for malformed JSON)."""
    data = body if isinstance(body, str | bytes) else ("" if body is None else json.dumps(body))
    return client.post(url, data=data, content_type="application/json", **extra)


def hold(client: Client, sale: Sale, seats: list[str], **extra: object):
    return post(client, sale.holds_url, {"seats": seats}, **extra)


def state(sale: Sale) -> tuple[int, dict[str, str], dict[str, dict]]:
    """Everything a command could change: seq, seat states, holds."""
    snap = inventory.inventory_snapshot(event_id=sale.event.pk)
    return snap.seq, snap.state, snap.holds


def iso_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- hold, extend, release, reserve: the happy path and its shapes ------------------------


def test_hold_explicit_seats(sale, alice):
    response = hold(alice, sale, ["A-1-3", "A-1-4"])

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"hold_token", "event_id", "seats", "expires_at", "seq"}
    assert body["event_id"] == sale.event.pk
    assert body["seats"] == ["A-1-3", "A-1-4"]
    assert body["seq"] == 1
    assert when(body["expires_at"]) == iso_ms(T0 + TTL_MS)
    assert body["hold_token"].startswith(f"{sale.event.pk}.")
    seq, seats, holds = state(sale)
    assert seq == 1
    assert seats == {"A-1-3": f"h:{body['hold_token']}", "A-1-4": f"h:{body['hold_token']}"}
    assert holds[body["hold_token"]]["seats"] == ["A-1-3", "A-1-4"]


def test_best_available_in_a_section_is_adjacent_and_closest(sale, alice):
    response = post(alice, sale.holds_url, {"best": {"count": 2, "section": sale.a.pk}})

    assert response.status_code == 201
    body = response.json()
    # Row 1 of A is closest; 3-4 (x 20-30) is centred nearest x=22 and strands nobody.
    assert body["seats"] == ["A-1-3", "A-1-4"]
    assert when(body["expires_at"]) == iso_ms(T0 + TTL_MS)
    assert set(state(sale)[1]) == {"A-1-3", "A-1-4"}


def test_best_available_skips_taken_seats_and_keeps_the_group_together(sale, alice, bob):
    assert hold(bob, sale, ["A-1-3", "A-1-4"]).status_code == 201

    response = post(alice, sale.holds_url, {"best": {"count": 3, "section": sale.a.pk}})

    assert response.status_code == 201
    # Row 1 now has only 1-2 and 5-6 free: no room for three, so row 2, closest to x=22
    # without stranding a seat (2-4 and 3-5 each leave one alone at an end).
    assert response.json()["seats"] == ["A-2-1", "A-2-2", "A-2-3"]


def test_best_available_by_price_category(sale, alice):
    response = post(alice, sale.holds_url, {"best": {"count": 2, "category": sale.standard.pk}})

    assert response.status_code == 201
    # Standard is B and C; B's row 1 start is the closest pair to (22, -20).
    assert response.json()["seats"] == ["B-1-1", "B-1-2"]


def test_best_available_when_too_few_are_free_is_409_and_holds_nothing(sale, alice):
    before = state(sale)
    response = post(alice, sale.holds_url, {"best": {"count": 5, "section": sale.c.pk}})
    assert response.status_code == 409
    assert response.json()["code"] == "seats_unavailable"
    assert response.json()["seats"] == []
    assert state(sale) == before


def test_extend(sale, alice, clock):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    clock.now = T0 + 100_000

    response = post(alice, f"/api/holds/{token}/extend")

    assert response.status_code == 200
    assert set(response.json()) == {"hold_token", "expires_at"}
    assert response.json()["hold_token"] == token
    assert when(response.json()["expires_at"]) == iso_ms(T0 + 100_000 + TTL_MS)
    assert state(sale)[2][token]["expires"] == T0 + 100_000 + TTL_MS


def test_extend_never_goes_past_three_ttls_from_the_hold(sale, alice, clock):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    expires = []
    for step in (1, 2, 3, 3):  # extend a second before each expiry, then once more
        clock.now = T0 + step * (TTL_MS - 1000)
        response = post(alice, f"/api/holds/{token}/extend")
        assert response.status_code == 200
        expires.append(when(response.json()["expires_at"]))

    assert expires == [
        iso_ms(T0 + 1 * (TTL_MS - 1000) + TTL_MS),
        iso_ms(T0 + 2 * (TTL_MS - 1000) + TTL_MS),
        iso_ms(T0 + 3 * TTL_MS),
        iso_ms(T0 + 3 * TTL_MS),
    ]


def test_release_some_then_the_rest(sale, alice):
    token = hold(alice, sale, ["A-1-1", "A-1-2", "A-1-3"]).json()["hold_token"]

    some = post(alice, f"/api/holds/{token}/release", {"seats": ["A-1-2"]})

    assert some.status_code == 200
    assert some.json() == {"seats": ["A-1-2"], "seq": 2}
    seq, seats, holds = state(sale)
    assert set(seats) == {"A-1-1", "A-1-3"}
    assert holds[token]["seats"] == ["A-1-1", "A-1-3"]

    rest = post(alice, f"/api/holds/{token}/release", {})

    assert rest.status_code == 200
    assert rest.json() == {"seats": ["A-1-1", "A-1-3"], "seq": 3}
    assert state(sale) == (3, {}, {})
    assert post(alice, f"/api/holds/{token}/extend").json()["code"] == "hold_not_found"


def test_release_with_no_body_is_refused_and_releases_nothing(sale, alice):
    # Everything is released only when asked for ({}): a lost body must not free the hold.
    token = hold(alice, sale, ["C-1-1", "C-1-2"]).json()["hold_token"]
    before = state(sale)

    response = post(alice, f"/api/holds/{token}/release")

    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert state(sale) == before


def test_reserve(sale, alice):
    token = hold(alice, sale, ["B-2-5", "B-2-6"]).json()["hold_token"]

    response = post(alice, f"/api/holds/{token}/reserve")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"reservation_id", "event_id", "seats", "seq"}
    assert body["event_id"] == sale.event.pk
    assert body["seats"] == ["B-2-5", "B-2-6"]
    assert body["seq"] == 2
    uuid.UUID(body["reservation_id"])
    seq, seats, holds = state(sale)
    assert seats == {"B-2-5": f"r:{body['reservation_id']}", "B-2-6": f"r:{body['reservation_id']}"}
    assert holds == {}
    again = post(alice, f"/api/holds/{token}/reserve")
    assert (again.status_code, again.json()["code"]) == (404, "hold_not_found")


# --- conflicts between buyers ---------------------------------------------------------------


def test_a_second_buyer_gets_409_naming_every_taken_seat(sale, alice, bob, staff):
    hold(alice, sale, ["A-1-1", "A-1-2"])
    reserved = hold(alice, sale, ["A-1-5"]).json()["hold_token"]
    post(alice, f"/api/holds/{reserved}/reserve")
    post(staff, f"/api/events/{sale.event.pk}/block", {"seats": ["A-1-4"]})
    before = state(sale)

    response = hold(bob, sale, ["A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5", "A-1-6"])

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "seats_unavailable"
    assert body["seats"] == ["A-1-1", "A-1-2", "A-1-4", "A-1-5"]
    assert body["detail"]
    assert state(sale) == before  # all or nothing: A-1-3 and A-1-6 stay free


def test_the_same_seats_twice_by_one_buyer_is_also_a_conflict(sale, alice):
    hold(alice, sale, ["A-1-1"])
    response = hold(alice, sale, ["A-1-1"])
    assert (response.status_code, response.json()["seats"]) == (409, ["A-1-1"])


@pytest.mark.parametrize("command", ["extend", "release", "reserve"])
def test_only_the_holder_can_change_a_hold(sale, alice, bob, command):
    token = hold(alice, sale, ["A-2-1", "A-2-2"]).json()["hold_token"]
    before = state(sale)

    response = post(bob, f"/api/holds/{token}/{command}", {})

    assert response.status_code == 403
    assert response.json()["code"] == "not_hold_owner"
    assert state(sale) == before
    # ... while the holder still can.
    assert post(alice, f"/api/holds/{token}/{command}", {}).status_code in (200, 201)


def test_after_expiry_another_buyer_may_take_the_seats(sale, alice, bob, clock):
    hold(alice, sale, ["A-1-1"])
    clock.now = T0 + TTL_MS
    response = hold(bob, sale, ["A-1-1"])
    assert response.status_code == 201


# --- every error code over HTTP -------------------------------------------------------------


def test_unknown_seats(sale, alice):
    response = hold(alice, sale, ["A-1-1", "Z-9-9", "A-1-99"])
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_seats"
    assert response.json()["seats"] == ["Z-9-9", "A-1-99"]
    assert state(sale) == (0, {}, {})


def test_seats_of_another_venue_are_unknown(sale, alice):
    other = SectionFactory(name="X")
    services.section_seats_generate(section=other, grid=SeatGrid(rows=1, seats_per_row=1))
    response = hold(alice, sale, ["X-1-1"])
    assert (response.status_code, response.json()["code"]) == (400, "unknown_seats")


def test_duplicate_seats(sale, alice):
    response = hold(alice, sale, ["A-1-1", "A-1-2", "A-1-1"])
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_seats"
    assert response.json()["seats"] == ["A-1-1"]
    assert state(sale) == (0, {}, {})


def test_hold_limit_in_one_request(sale, alice):
    seats = [f"A-{r}-{n}" for r in (1, 2) for n in range(1, 7)][:11]
    response = hold(alice, sale, seats)
    assert response.status_code == 422
    assert response.json()["code"] == "hold_limit_exceeded"
    assert response.json()["limit"] == 10
    assert state(sale) == (0, {}, {})


def test_hold_limit_counts_every_live_hold_of_the_buyer(sale, alice, bob):
    assert hold(alice, sale, [f"A-1-{n}" for n in range(1, 7)]).status_code == 201
    before = state(sale)

    response = hold(alice, sale, ["B-1-1", "B-1-2", "B-1-3", "B-1-4", "B-1-5"])

    assert response.status_code == 422
    assert response.json()["code"] == "hold_limit_exceeded"
    assert (response.json()["limit"], response.json()["held"]) == (10, 6)
    assert state(sale) == before
    # The limit is per buyer: Bob may still hold five.
    assert hold(bob, sale, ["B-1-1", "B-1-2", "B-1-3", "B-1-4", "B-1-5"]).status_code == 201


def test_sale_closed(sale, alice):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    services.event_close_sale(event=sale.event)

    response = hold(alice, sale, ["A-1-2"])

    assert response.status_code == 409
    assert response.json()["code"] == "sale_closed"
    best = post(alice, sale.holds_url, {"best": {"count": 1}})
    assert (best.status_code, best.json()["code"]) == (409, "sale_closed")
    # Buyers mid-checkout may still confirm.
    assert post(alice, f"/api/holds/{token}/reserve").status_code == 201


def test_sale_not_open_for_a_draft_event(clock, alice):
    _, _, a, _, _ = venue_with_sections()
    draft = EventFactory(venue=a.venue, sale_status=Event.SaleStatus.DRAFT)

    explicit = post(alice, f"/api/events/{draft.pk}/holds", {"seats": ["A-1-1"]})
    best = post(alice, f"/api/events/{draft.pk}/holds", {"best": {"count": 1}})

    assert (explicit.status_code, explicit.json()["code"]) == (409, "sale_not_open")
    assert (best.status_code, best.json()["code"]) == (409, "sale_not_open")


def test_hold_on_an_event_that_does_not_exist_is_404(sale, alice):
    response = post(alice, "/api/events/987654321/holds", {"seats": ["A-1-1"]})
    best = post(alice, "/api/events/987654321/holds", {"best": {"count": 2}})
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert (best.status_code, best.json()["code"]) == (404, "not_found")


def test_buyer_commands_read_no_postgres(sale, alice, django_assert_num_queries):
    """The on-sale path is Redis only (docs/architecture.md, "Serving HTTP"): session,
    throttle, Idempotency-Key and the script; the event's existence is asked of Postgres
    only when Redis refuses the hold."""
    with django_assert_num_queries(0):
        token = hold(alice, sale, ["A-1-1", "A-1-2"], HTTP_IDEMPOTENCY_KEY="k1").json()[
            "hold_token"
        ]
        assert post(alice, f"/api/holds/{token}/extend").status_code == 200
        assert post(alice, f"/api/holds/{token}/release", {"seats": ["A-1-2"]}).status_code == 200
        assert post(alice, f"/api/holds/{token}/reserve").status_code == 201


@pytest.mark.parametrize("command", ["extend", "release", "reserve"])
@pytest.mark.parametrize(
    "token",
    ["{event}.no-such-hold", "987654321.no-such-hold", "not-a-token", "{event}.", ".abc"],
)
def test_hold_not_found(sale, alice, command, token):
    hold(alice, sale, ["A-1-1"])
    before = state(sale)

    response = post(alice, f"/api/holds/{token.format(event=sale.event.pk)}/{command}", {})

    assert response.status_code == 404
    assert response.json()["code"] == "hold_not_found"
    assert state(sale) == before


@pytest.mark.parametrize("command", ["extend", "release", "reserve"])
def test_hold_expired(sale, alice, clock, command):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    clock.now = T0 + TTL_MS  # expiry is exclusive: at `expires` the hold is over
    before = state(sale)

    response = post(alice, f"/api/holds/{token}/{command}", {})

    assert response.status_code == 410
    assert response.json()["code"] == "hold_expired"
    assert state(sale) == before


def test_a_hold_is_live_until_its_last_millisecond(sale, alice, clock):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    clock.now = T0 + TTL_MS - 1
    assert post(alice, f"/api/holds/{token}/reserve").status_code == 201


def test_seats_not_in_hold(sale, alice, bob):
    token = hold(alice, sale, ["A-1-1", "A-1-2"]).json()["hold_token"]
    hold(bob, sale, ["A-1-3"])
    before = state(sale)

    response = post(alice, f"/api/holds/{token}/release", {"seats": ["A-1-1", "A-1-3", "Z-1-1"]})

    assert response.status_code == 400
    assert response.json()["code"] == "seats_not_in_hold"
    assert response.json()["seats"] == ["A-1-3", "Z-1-1"]
    assert state(sale) == before


# --- malformed requests ------------------------------------------------------------------


def test_malformed_json_is_400_and_changes_nothing(sale, alice):
    response = post(alice, sale.holds_url, '{"seats": ["A-1-1",')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert state(sale) == (0, {}, {})


def test_a_body_over_16_kb_is_refused_before_parsing(sale, alice):
    # Valid JSON that would hold a seat, but for its size.
    body = json.dumps({"seats": ["A-1-1"], "padding": "x" * MAX_COMMAND_BODY})
    assert len(body) > 16 * 1024

    response = post(alice, sale.holds_url, body)

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert str(MAX_COMMAND_BODY) in response.json()["detail"]
    assert state(sale) == (0, {}, {})


def test_a_body_just_under_the_limit_is_accepted(sale, alice):
    padding = "x" * (MAX_COMMAND_BODY - 100)
    body = json.dumps({"seats": ["A-1-1"], "padding": padding})
    assert len(body) <= MAX_COMMAND_BODY
    assert post(alice, sale.holds_url, body).status_code == 201


def test_a_body_that_is_not_json_is_415(sale, alice):
    response = alice.post(sale.holds_url, {"seats": "A-1-1"})  # multipart form
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert state(sale) == (0, {}, {})


@pytest.mark.parametrize(
    "body",
    [
        {"seats": "A-1-1"},
        {"seats": {"A-1-1": True}},
        {"seats": []},
        {"seats": [f"A-1-{n}" for n in range(1, 102)]},
        {"seats": ["A" * 41]},
        {"seats": ["A-1-1"], "best": {"count": 1}},
        {},
        {"best": {"count": 0}},
        {"best": {"count": -1}},
        {"best": {"count": "two"}},
        {"best": {"count": 101}},
        {"best": {}},
        {"best": 2},
        {"best": {"count": 1, "section": "front"}},
        ["A-1-1"],
        "A-1-1",
    ],
    ids=lambda body: json.dumps(body)[:40],
)
def test_wrong_types_are_400_invalid(sale, alice, body):
    response = post(alice, sale.holds_url, json.dumps(body))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert state(sale) == (0, {}, {})


@pytest.mark.parametrize("body", [{"seats": "A-1-1"}, {"seats": []}, {"seats": [1, [2]]}])
def test_release_with_wrong_types_is_400_invalid(sale, alice, body):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    before = state(sale)
    response = post(alice, f"/api/holds/{token}/release", body)
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert state(sale) == before


# --- Idempotency-Key ----------------------------------------------------------------------


def test_a_repeat_with_the_same_key_replays_the_first_response(sale, alice):
    first = hold(alice, sale, ["A-1-1", "A-1-2"], headers={"Idempotency-Key": "k-1"})
    after_first = state(sale)

    again = hold(alice, sale, ["A-1-1", "A-1-2"], headers={"Idempotency-Key": "k-1"})

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.json()["hold_token"] == first.json()["hold_token"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert state(sale) == after_first
    assert len(after_first[2]) == 1


def test_a_first_command_that_created_the_session_is_replayed_to_its_retry(sale):
    newcomer = Client()  # no session yet: this hold creates it
    body = {"best": {"count": 2, "section": sale.a.pk}}
    first = post(newcomer, sale.holds_url, body, headers={"Idempotency-Key": "first"})
    assert settings.SESSION_COOKIE_NAME in newcomer.cookies

    # The retry now carries the new session cookie, yet must find the first answer.
    again = post(newcomer, sale.holds_url, body, headers={"Idempotency-Key": "first"})

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert len(state(sale)[2]) == 1


def test_a_replayed_best_available_hold_does_not_pick_again(sale, alice):
    body = {"best": {"count": 2, "section": sale.b.pk}}
    first = post(alice, sale.holds_url, body, headers={"Idempotency-Key": "best"})
    again = post(alice, sale.holds_url, body, headers={"Idempotency-Key": "best"})
    assert again.content == first.content
    assert len(state(sale)[1]) == 2


def test_an_error_is_replayed_too(sale, alice, bob):
    bobs = hold(bob, sale, ["A-1-1"]).json()["hold_token"]
    first = hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "k"})
    assert post(bob, f"/api/holds/{bobs}/release", {}).status_code == 200
    # A-1-1 is free now, but the key's answer is the one it got the first time.
    again = hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "k"})
    assert (first.status_code, again.status_code) == (409, 409)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_keys_are_per_buyer(sale, alice, bob):
    a = hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "same"})
    b = hold(bob, sale, ["A-1-2"], headers={"Idempotency-Key": "same"})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["hold_token"] != b.json()["hold_token"]
    assert "Idempotent-Replayed" not in b


def test_without_a_key_a_repeat_runs_again(sale, alice):
    hold(alice, sale, ["A-1-1"])
    assert hold(alice, sale, ["A-1-1"]).status_code == 409


def test_the_same_key_with_another_body_is_422(sale, alice):
    hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "k-2"})
    before = state(sale)

    response = hold(alice, sale, ["A-1-2"], headers={"Idempotency-Key": "k-2"})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert state(sale) == before


def test_the_same_key_on_another_route_is_422(sale, alice):
    token = hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "k-3"}).json()["hold_token"]
    response = post(alice, f"/api/holds/{token}/extend", headers={"Idempotency-Key": "k-3"})
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")


def test_a_key_still_in_flight_is_409(sale, alice):
    body = json.dumps({"seats": ["A-1-1"]})
    # Write the mark exactly as the wrapper does while the first request runs.
    request = RequestFactory().post(sale.holds_url, data=body, content_type="application/json")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = alice.cookies[
        settings.SESSION_COOKIE_NAME
    ].value
    fingerprint = hashlib.sha256(f"POST {sale.holds_url}\n".encode() + body.encode()).hexdigest()
    idempotency.redis_client_get().set(
        idempotency._redis_key(request, "slow"),
        json.dumps({"state": "in_flight", "fingerprint": fingerprint}),
        ex=idempotency.IN_FLIGHT_SECONDS,
    )

    response = post(alice, sale.holds_url, body, headers={"Idempotency-Key": "slow"})

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_flight"
    assert state(sale) == (0, {}, {})


def test_an_overlong_key_is_400(sale, alice):
    response = hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "k" * 256})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_idempotency_key")
    assert state(sale) == (0, {}, {})


# --- CSRF and authentication -------------------------------------------------------------


def test_a_session_cookie_without_the_csrf_token_is_refused(sale):
    browser = Client(enforce_csrf_checks=True)
    first = hold(browser, sale, ["A-1-1"])  # no cookie yet: nothing to ride on
    assert first.status_code == 201
    assert settings.SESSION_COOKIE_NAME in browser.cookies
    token = first.json()["hold_token"]
    before = state(sale)

    refused = post(browser, f"/api/holds/{token}/release")
    refused_hold = hold(browser, sale, ["A-1-2"])

    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert "CSRF" in refused.json()["detail"]
    assert refused_hold.status_code == 403
    assert state(sale) == before


def test_with_the_csrf_token_from_the_cookie_it_works(sale):
    browser = Client(enforce_csrf_checks=True)
    first = hold(browser, sale, ["A-1-1"])
    # The command that created the session also handed out the CSRF cookie.
    csrf = browser.cookies[settings.CSRF_COOKIE_NAME].value
    token = first.json()["hold_token"]

    response = post(browser, f"/api/holds/{token}/reserve", HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 201
    assert response.json()["seats"] == ["A-1-1"]


def test_a_wrong_csrf_token_is_refused(sale):
    browser = Client(enforce_csrf_checks=True)
    token = hold(browser, sale, ["A-1-1"]).json()["hold_token"]
    response = post(browser, f"/api/holds/{token}/reserve", HTTP_X_CSRFTOKEN="x" * 32)
    assert response.status_code == 403
    assert state(sale)[1] == {"A-1-1": f"h:{token}"}


def test_token_auth_needs_no_csrf(sale, django_user_model):
    user = django_user_model.objects.create_user("app-user")
    key = Token.objects.create(user=user).key
    app = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    app.session  # noqa: B018 - a session cookie too: the header still wins, no CSRF asked

    created = hold(app, sale, ["B-1-1", "B-1-2"])
    assert created.status_code == 201
    token = created.json()["hold_token"]
    assert state(sale)[2][token]["holder"] == f"user:{user.pk}"

    assert post(app, f"/api/holds/{token}/extend").status_code == 200
    assert post(app, f"/api/holds/{token}/reserve").status_code == 201


def test_a_token_user_is_the_same_buyer_on_any_client(sale, django_user_model):
    user = django_user_model.objects.create_user("two-devices")
    key = Token.objects.create(user=user).key
    phone = Client(HTTP_AUTHORIZATION=f"Token {key}")
    laptop = Client()
    laptop.force_login(user)
    token = hold(phone, sale, ["B-1-1"]).json()["hold_token"]
    assert post(laptop, f"/api/holds/{token}/reserve").status_code == 201


def test_a_bad_token_is_refused(sale):
    app = Client(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = hold(app, sale, ["B-1-1"])
    # 403, not 401: DRF sends 401 only when the first authenticator (session) names a
    # WWW-Authenticate scheme, and session auth has none.
    assert (response.status_code, response.json()["code"]) == (403, "authentication_failed")
    assert state(sale) == (0, {}, {})


# --- throttling --------------------------------------------------------------------------


@pytest.fixture
def three_per_minute(monkeypatch) -> list[float]:
    """Commands limited to 3/min; returns a settable clock for the throttle."""
    monkeypatch.setattr(BuyerRateThrottle, "THROTTLE_RATES", {"commands": "3/min"})
    now = [1_000_000.0]
    monkeypatch.setattr(BuyerRateThrottle, "timer", lambda self: now[0])
    return now


def test_commands_past_the_rate_are_429_and_change_nothing(sale, alice, bob, three_per_minute):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    assert post(alice, f"/api/holds/{token}/extend").status_code == 200
    assert hold(alice, sale, ["A-1-2"]).status_code == 201
    before = state(sale)

    response = hold(alice, sale, ["A-1-3"])

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) == 60
    assert state(sale) == before
    # Per buyer: Bob is not affected.
    assert hold(bob, sale, ["A-1-3"]).status_code == 201
    # And after the window, Alice may go on.
    three_per_minute[0] += 61
    assert hold(alice, sale, ["A-1-4"]).status_code == 201


def test_a_throttled_command_is_not_kept_under_its_idempotency_key(sale, alice, three_per_minute):
    for n in (1, 2, 3):
        assert hold(alice, sale, [f"A-1-{n}"]).status_code == 201
    throttled = hold(alice, sale, ["A-1-4"], headers={"Idempotency-Key": "retry-me"})
    assert throttled.status_code == 429

    three_per_minute[0] += 61
    retried = hold(alice, sale, ["A-1-4"], headers={"Idempotency-Key": "retry-me"})

    # The throttled request never ran; retrying it as told must run it, not replay a 429.
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert state(sale)[1]["A-1-4"] == f"h:{retried.json()['hold_token']}"


def test_a_csrf_failure_is_not_kept_under_its_idempotency_key(sale):
    browser = Client(enforce_csrf_checks=True)
    hold(browser, sale, ["A-1-1"])
    csrf = browser.cookies[settings.CSRF_COOKIE_NAME].value

    refused = hold(browser, sale, ["A-1-2"], headers={"Idempotency-Key": "k"})
    retried = hold(
        browser, sale, ["A-1-2"], headers={"Idempotency-Key": "k"}, HTTP_X_CSRFTOKEN=csrf
    )

    assert refused.status_code == 403
    assert retried.status_code == 201


# --- staff commands ------------------------------------------------------------------------


def test_staff_block_and_unblock(sale, staff, alice):
    url = f"/api/events/{sale.event.pk}"

    blocked = post(staff, f"{url}/block", {"seats": ["C-1-1", "C-1-2"]})

    assert blocked.status_code == 200
    assert blocked.json() == {"seats": ["C-1-1", "C-1-2"], "seq": 1}
    assert state(sale)[1] == {"C-1-1": "b", "C-1-2": "b"}
    conflict = hold(alice, sale, ["C-1-2", "C-1-3"])
    assert (conflict.status_code, conflict.json()["seats"]) == (409, ["C-1-2"])

    unblocked = post(staff, f"{url}/unblock", {"seats": ["C-1-2"]})

    assert unblocked.status_code == 200
    assert unblocked.json() == {"seats": ["C-1-2"], "seq": 2}
    assert state(sale)[1] == {"C-1-1": "b"}
    assert hold(alice, sale, ["C-1-2", "C-1-3"]).status_code == 201


def test_staff_cannot_block_a_held_seat_or_unblock_a_free_one(sale, staff, alice):
    hold(alice, sale, ["C-1-1"])
    before = state(sale)
    url = f"/api/events/{sale.event.pk}"

    block = post(staff, f"{url}/block", {"seats": ["C-1-1", "C-1-2"]})
    unblock = post(staff, f"{url}/unblock", {"seats": ["C-1-3"]})

    assert (block.status_code, block.json()["code"], block.json()["seats"]) == (
        409,
        "seats_unavailable",
        ["C-1-1"],
    )
    assert (unblock.status_code, unblock.json()["code"], unblock.json()["seats"]) == (
        409,
        "seats_not_blocked",
        ["C-1-3"],
    )
    assert state(sale) == before


def test_staff_cancel_frees_the_seats(sale, staff, alice, bob):
    token = hold(alice, sale, ["B-1-3", "B-1-4"]).json()["hold_token"]
    reservation = post(alice, f"/api/holds/{token}/reserve").json()["reservation_id"]
    url = f"/api/events/{sale.event.pk}/reservations/{reservation}/cancel"

    response = post(staff, url)

    assert response.status_code == 200
    assert response.json() == {"reservation_id": reservation, "seq": 3}
    assert state(sale)[1] == {}
    assert hold(bob, sale, ["B-1-3", "B-1-4"]).status_code == 201
    again = post(staff, url)
    assert (again.status_code, again.json()["code"]) == (409, "reservation_cancelled")
    unknown = post(staff, f"/api/events/{sale.event.pk}/reservations/{uuid.uuid4()}/cancel")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "reservation_not_found")


@pytest.fixture
def non_staff_clients(django_user_model) -> dict[str, Client]:
    member = Client()
    member.force_login(django_user_model.objects.create_user("member"))
    return {"anonymous": buyer(), "logged-in": member}


@pytest.mark.parametrize(
    ("who", "code"), [("anonymous", "not_authenticated"), ("logged-in", "permission_denied")]
)
def test_staff_commands_are_refused_to_everyone_else(
    sale, staff, alice, non_staff_clients, who, code
):
    token = hold(alice, sale, ["A-1-1"]).json()["hold_token"]
    reservation = post(alice, f"/api/holds/{token}/reserve").json()["reservation_id"]
    post(staff, f"/api/events/{sale.event.pk}/block", {"seats": ["A-1-2"]})
    before = state(sale)
    client = non_staff_clients[who]
    url = f"/api/events/{sale.event.pk}"

    responses = [
        post(client, f"{url}/block", {"seats": ["A-1-3"]}),
        post(client, f"{url}/unblock", {"seats": ["A-1-2"]}),
        post(client, f"{url}/reservations/{reservation}/cancel"),
    ]

    assert [(r.status_code, r.json()["code"]) for r in responses] == [(403, code)] * 3
    assert state(sale) == before


def test_a_key_is_claimed_only_past_the_door(sale, alice):
    """Refused before the door (here: content negotiation), nothing is kept under the key,
    and the retry runs."""
    headers = {"Idempotency-Key": "early"}
    refused = hold(alice, sale, ["A-1-1"], headers=headers, HTTP_ACCEPT="text/csv")
    assert refused.status_code == 406

    retried = hold(alice, sale, ["A-1-1"], headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    replayed = hold(alice, sale, ["A-1-1"], headers=headers)
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == retried.json()


def test_one_redis_call_at_the_door(sale, alice, monkeypatch):
    """Replay, rate and claim are one script call; the whole command is four round trips
    with an Idempotency-Key (session, door, hold script, the kept answer)."""
    calls = []
    client = inventory.redis_client_get()
    real = type(client).execute_command
    monkeypatch.setattr(
        type(client),
        "execute_command",
        lambda self, *args, **kw: calls.append(args[0]) or real(self, *args, **kw),
    )
    alice.session  # noqa: B018 - loaded once here, as by the page before the command
    calls.clear()

    assert hold(alice, sale, ["A-1-1"], headers={"Idempotency-Key": "k"}).status_code == 201

    assert calls == ["GET", "EVALSHA", "EVALSHA", "SET"]  # session, door, hold, answer
