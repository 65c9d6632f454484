"""The buyer and staff commands over HTTP (docs/api.md): hold (explicit seats or best
available), extend, release, reserve; block, unblock, cancel; every error code they answer.

Real Postgres and Redis: the Django test client goes through the middleware, DRF, the
idempotency wrapper and the Lua scripts. Each Client is its own browser, hence its own
buyer. The venue and the fixtures: helpers.py and conftest.py. What the commands' bodies
must look like: test_command_parsing.py; Idempotency-Key: test_idempotency.py; CSRF:
test_csrf.py; API tokens: test_token_auth.py; the rate limit: test_throttling.py.
"""

import uuid

import pytest
from django.test import Client

from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory, SectionFactory
from apps.reservations.tests.helpers import (
    T0,
    TTL_MS,
    buyer,
    hold,
    iso_ms,
    post,
    state,
    venue_with_sections,
    when,
)

pytestmark = pytest.mark.django_db


# --- hold, extend, release, reserve: the happy path and its shapes -----------------------


def test_hold_explicit_seats(abc_sale, alice):
    response = hold(alice, abc_sale, ["A-1-3", "A-1-4"])

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"hold_token", "event_id", "seats", "expires_at", "seq"}
    assert body["event_id"] == abc_sale.event.pk
    assert body["seats"] == ["A-1-3", "A-1-4"]
    assert body["seq"] == 1
    assert when(body["expires_at"]) == iso_ms(T0 + TTL_MS)
    assert body["hold_token"].startswith(f"{abc_sale.event.pk}.")
    seq, seats, holds = state(abc_sale)
    assert seq == 1
    assert seats == {"A-1-3": f"h:{body['hold_token']}", "A-1-4": f"h:{body['hold_token']}"}
    assert holds[body["hold_token"]]["seats"] == ["A-1-3", "A-1-4"]


def test_best_available_in_a_section_is_adjacent_and_closest(abc_sale, alice):
    response = post(alice, abc_sale.holds_url, {"best": {"count": 2, "section": abc_sale.a.pk}})

    assert response.status_code == 201
    body = response.json()
    # Row 1 of A is closest; 3-4 (x 20-30) is centred nearest x=22 and strands nobody.
    assert body["seats"] == ["A-1-3", "A-1-4"]
    assert when(body["expires_at"]) == iso_ms(T0 + TTL_MS)
    assert set(state(abc_sale)[1]) == {"A-1-3", "A-1-4"}


def test_best_available_skips_taken_seats_and_keeps_the_group_together(abc_sale, alice, bob):
    assert hold(bob, abc_sale, ["A-1-3", "A-1-4"]).status_code == 201

    response = post(alice, abc_sale.holds_url, {"best": {"count": 3, "section": abc_sale.a.pk}})

    assert response.status_code == 201
    # Row 1 now has only 1-2 and 5-6 free: no room for three, so row 2, closest to x=22
    # without stranding a seat (2-4 and 3-5 each leave one alone at an end).
    assert response.json()["seats"] == ["A-2-1", "A-2-2", "A-2-3"]


def test_best_available_by_price_category(abc_sale, alice):
    response = post(
        alice, abc_sale.holds_url, {"best": {"count": 2, "category": abc_sale.standard.pk}}
    )

    assert response.status_code == 201
    # Standard is B and C; B's row 1 start is the closest pair to (22, -20).
    assert response.json()["seats"] == ["B-1-1", "B-1-2"]


def test_best_available_when_too_few_are_free_is_409_and_holds_nothing(abc_sale, alice):
    before = state(abc_sale)
    response = post(alice, abc_sale.holds_url, {"best": {"count": 5, "section": abc_sale.c.pk}})
    assert response.status_code == 409
    assert response.json()["code"] == "seats_unavailable"
    assert response.json()["seats"] == []
    assert state(abc_sale) == before


def test_extend(abc_sale, alice, clock):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    clock.now = T0 + 100_000

    response = post(alice, f"/api/holds/{token}/extend")

    assert response.status_code == 200
    assert set(response.json()) == {"hold_token", "expires_at"}
    assert response.json()["hold_token"] == token
    assert when(response.json()["expires_at"]) == iso_ms(T0 + 100_000 + TTL_MS)
    assert state(abc_sale)[2][token]["expires"] == T0 + 100_000 + TTL_MS


def test_extend_never_goes_past_three_ttls_from_the_hold(abc_sale, alice, clock):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
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


def test_release_some_then_the_rest(abc_sale, alice):
    token = hold(alice, abc_sale, ["A-1-1", "A-1-2", "A-1-3"]).json()["hold_token"]

    some = post(alice, f"/api/holds/{token}/release", {"seats": ["A-1-2"]})

    assert some.status_code == 200
    assert some.json() == {"seats": ["A-1-2"], "seq": 2}
    seq, seats, holds = state(abc_sale)
    assert set(seats) == {"A-1-1", "A-1-3"}
    assert holds[token]["seats"] == ["A-1-1", "A-1-3"]

    rest = post(alice, f"/api/holds/{token}/release", {})

    assert rest.status_code == 200
    assert rest.json() == {"seats": ["A-1-1", "A-1-3"], "seq": 3}
    assert state(abc_sale) == (3, {}, {})
    assert post(alice, f"/api/holds/{token}/extend").json()["code"] == "hold_not_found"


def test_release_with_no_body_is_refused_and_releases_nothing(abc_sale, alice):
    # Everything is released only when asked for ({}): a lost body must not free the hold.
    token = hold(alice, abc_sale, ["C-1-1", "C-1-2"]).json()["hold_token"]
    before = state(abc_sale)

    response = post(alice, f"/api/holds/{token}/release")

    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert state(abc_sale) == before


def test_reserve(abc_sale, alice):
    token = hold(alice, abc_sale, ["B-2-5", "B-2-6"]).json()["hold_token"]

    response = post(alice, f"/api/holds/{token}/reserve")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"reservation_id", "event_id", "seats", "seq"}
    assert body["event_id"] == abc_sale.event.pk
    assert body["seats"] == ["B-2-5", "B-2-6"]
    assert body["seq"] == 2
    uuid.UUID(body["reservation_id"])
    seq, seats, holds = state(abc_sale)
    assert seats == {"B-2-5": f"r:{body['reservation_id']}", "B-2-6": f"r:{body['reservation_id']}"}
    assert holds == {}
    again = post(alice, f"/api/holds/{token}/reserve")
    assert (again.status_code, again.json()["code"]) == (404, "hold_not_found")


# --- conflicts between buyers ------------------------------------------------------------


def test_a_second_buyer_gets_409_naming_every_taken_seat(abc_sale, alice, bob, staff):
    hold(alice, abc_sale, ["A-1-1", "A-1-2"])
    reserved = hold(alice, abc_sale, ["A-1-5"]).json()["hold_token"]
    post(alice, f"/api/holds/{reserved}/reserve")
    post(staff, f"/api/events/{abc_sale.event.pk}/block", {"seats": ["A-1-4"]})
    before = state(abc_sale)

    response = hold(bob, abc_sale, ["A-1-1", "A-1-2", "A-1-3", "A-1-4", "A-1-5", "A-1-6"])

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "seats_unavailable"
    assert body["seats"] == ["A-1-1", "A-1-2", "A-1-4", "A-1-5"]
    assert body["detail"]
    assert state(abc_sale) == before  # all or nothing: A-1-3 and A-1-6 stay free


def test_the_same_seats_twice_by_one_buyer_is_also_a_conflict(abc_sale, alice):
    hold(alice, abc_sale, ["A-1-1"])
    response = hold(alice, abc_sale, ["A-1-1"])
    assert (response.status_code, response.json()["seats"]) == (409, ["A-1-1"])


@pytest.mark.parametrize("command", ["extend", "release", "reserve"])
def test_only_the_holder_can_change_a_hold(abc_sale, alice, bob, command):
    token = hold(alice, abc_sale, ["A-2-1", "A-2-2"]).json()["hold_token"]
    before = state(abc_sale)

    response = post(bob, f"/api/holds/{token}/{command}", {})

    assert response.status_code == 403
    assert response.json()["code"] == "not_hold_owner"
    assert state(abc_sale) == before
    # ... while the holder still can.
    assert post(alice, f"/api/holds/{token}/{command}", {}).status_code in (200, 201)


def test_after_expiry_another_buyer_may_take_the_seats(abc_sale, alice, bob, clock):
    hold(alice, abc_sale, ["A-1-1"])
    clock.now = T0 + TTL_MS
    response = hold(bob, abc_sale, ["A-1-1"])
    assert response.status_code == 201


# --- every error code over HTTP ----------------------------------------------------------


def test_unknown_seats(abc_sale, alice):
    response = hold(alice, abc_sale, ["A-1-1", "Z-9-9", "A-1-99"])
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_seats"
    assert response.json()["seats"] == ["Z-9-9", "A-1-99"]
    assert state(abc_sale) == (0, {}, {})


def test_seats_of_another_venue_are_unknown(abc_sale, alice):
    other = SectionFactory(name="X")
    services.section_seats_generate(section=other, grid=SeatGrid(rows=1, seats_per_row=1))
    response = hold(alice, abc_sale, ["X-1-1"])
    assert (response.status_code, response.json()["code"]) == (400, "unknown_seats")


def test_duplicate_seats(abc_sale, alice):
    response = hold(alice, abc_sale, ["A-1-1", "A-1-2", "A-1-1"])
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_seats"
    assert response.json()["seats"] == ["A-1-1"]
    assert state(abc_sale) == (0, {}, {})


def test_hold_limit_in_one_request(abc_sale, alice):
    seats = [f"A-{r}-{n}" for r in (1, 2) for n in range(1, 7)][:11]
    response = hold(alice, abc_sale, seats)
    assert response.status_code == 422
    assert response.json()["code"] == "hold_limit_exceeded"
    assert response.json()["limit"] == 10
    assert state(abc_sale) == (0, {}, {})


def test_hold_limit_counts_every_live_hold_of_the_buyer(abc_sale, alice, bob):
    assert hold(alice, abc_sale, [f"A-1-{n}" for n in range(1, 7)]).status_code == 201
    before = state(abc_sale)

    response = hold(alice, abc_sale, ["B-1-1", "B-1-2", "B-1-3", "B-1-4", "B-1-5"])

    assert response.status_code == 422
    assert response.json()["code"] == "hold_limit_exceeded"
    assert (response.json()["limit"], response.json()["held"]) == (10, 6)
    assert state(abc_sale) == before
    # The limit is per buyer: Bob may still hold five.
    assert hold(bob, abc_sale, ["B-1-1", "B-1-2", "B-1-3", "B-1-4", "B-1-5"]).status_code == 201


def test_sale_closed(abc_sale, alice):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    services.event_close_sale(event=abc_sale.event)

    response = hold(alice, abc_sale, ["A-1-2"])

    assert response.status_code == 409
    assert response.json()["code"] == "sale_closed"
    best = post(alice, abc_sale.holds_url, {"best": {"count": 1}})
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


def test_hold_on_an_event_that_does_not_exist_is_404(abc_sale, alice):
    response = post(alice, "/api/events/987654321/holds", {"seats": ["A-1-1"]})
    best = post(alice, "/api/events/987654321/holds", {"best": {"count": 2}})
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert (best.status_code, best.json()["code"]) == (404, "not_found")


def test_buyer_commands_read_no_postgres(abc_sale, alice, django_assert_num_queries):
    """The on-abc_sale path is Redis only (docs/architecture.md, "Serving HTTP"): session,
    throttle, Idempotency-Key and the script; the event's existence is asked of Postgres
    only when Redis refuses the hold."""
    with django_assert_num_queries(0):
        token = hold(alice, abc_sale, ["A-1-1", "A-1-2"], HTTP_IDEMPOTENCY_KEY="k1").json()[
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
def test_hold_not_found(abc_sale, alice, command, token):
    hold(alice, abc_sale, ["A-1-1"])
    before = state(abc_sale)

    response = post(alice, f"/api/holds/{token.format(event=abc_sale.event.pk)}/{command}", {})

    assert response.status_code == 404
    assert response.json()["code"] == "hold_not_found"
    assert state(abc_sale) == before


@pytest.mark.parametrize("command", ["extend", "release", "reserve"])
def test_hold_expired(abc_sale, alice, clock, command):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    clock.now = T0 + TTL_MS  # expiry is exclusive: at `expires` the hold is over
    before = state(abc_sale)

    response = post(alice, f"/api/holds/{token}/{command}", {})

    assert response.status_code == 410
    assert response.json()["code"] == "hold_expired"
    assert state(abc_sale) == before


def test_a_hold_is_live_until_its_last_millisecond(abc_sale, alice, clock):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    clock.now = T0 + TTL_MS - 1
    assert post(alice, f"/api/holds/{token}/reserve").status_code == 201


def test_seats_not_in_hold(abc_sale, alice, bob):
    token = hold(alice, abc_sale, ["A-1-1", "A-1-2"]).json()["hold_token"]
    hold(bob, abc_sale, ["A-1-3"])
    before = state(abc_sale)

    response = post(alice, f"/api/holds/{token}/release", {"seats": ["A-1-1", "A-1-3", "Z-1-1"]})

    assert response.status_code == 400
    assert response.json()["code"] == "seats_not_in_hold"
    assert response.json()["seats"] == ["A-1-3", "Z-1-1"]
    assert state(abc_sale) == before


# --- staff commands ----------------------------------------------------------------------


def test_staff_block_and_unblock(abc_sale, staff, alice):
    url = f"/api/events/{abc_sale.event.pk}"

    blocked = post(staff, f"{url}/block", {"seats": ["C-1-1", "C-1-2"]})

    assert blocked.status_code == 200
    assert blocked.json() == {"seats": ["C-1-1", "C-1-2"], "seq": 1}
    assert state(abc_sale)[1] == {"C-1-1": "b", "C-1-2": "b"}
    conflict = hold(alice, abc_sale, ["C-1-2", "C-1-3"])
    assert (conflict.status_code, conflict.json()["seats"]) == (409, ["C-1-2"])

    unblocked = post(staff, f"{url}/unblock", {"seats": ["C-1-2"]})

    assert unblocked.status_code == 200
    assert unblocked.json() == {"seats": ["C-1-2"], "seq": 2}
    assert state(abc_sale)[1] == {"C-1-1": "b"}
    assert hold(alice, abc_sale, ["C-1-2", "C-1-3"]).status_code == 201


def test_staff_cannot_block_a_held_seat_or_unblock_a_free_one(abc_sale, staff, alice):
    hold(alice, abc_sale, ["C-1-1"])
    before = state(abc_sale)
    url = f"/api/events/{abc_sale.event.pk}"

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
    assert state(abc_sale) == before


def test_staff_cancel_frees_the_seats(abc_sale, staff, alice, bob):
    token = hold(alice, abc_sale, ["B-1-3", "B-1-4"]).json()["hold_token"]
    reservation = post(alice, f"/api/holds/{token}/reserve").json()["reservation_id"]
    url = f"/api/events/{abc_sale.event.pk}/reservations/{reservation}/cancel"

    response = post(staff, url)

    assert response.status_code == 200
    assert response.json() == {"reservation_id": reservation, "seq": 3}
    assert state(abc_sale)[1] == {}
    assert hold(bob, abc_sale, ["B-1-3", "B-1-4"]).status_code == 201
    again = post(staff, url)
    assert (again.status_code, again.json()["code"]) == (409, "reservation_cancelled")
    unknown = post(staff, f"/api/events/{abc_sale.event.pk}/reservations/{uuid.uuid4()}/cancel")
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
    abc_sale, staff, alice, non_staff_clients, who, code
):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    reservation = post(alice, f"/api/holds/{token}/reserve").json()["reservation_id"]
    post(staff, f"/api/events/{abc_sale.event.pk}/block", {"seats": ["A-1-2"]})
    before = state(abc_sale)
    client = non_staff_clients[who]
    url = f"/api/events/{abc_sale.event.pk}"

    responses = [
        post(client, f"{url}/block", {"seats": ["A-1-3"]}),
        post(client, f"{url}/unblock", {"seats": ["A-1-2"]}),
        post(client, f"{url}/reservations/{reservation}/cancel"),
    ]

    assert [(r.status_code, r.json()["code"]) for r in responses] == [(403, code)] * 3
    assert state(abc_sale) == before
