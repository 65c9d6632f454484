"""The per-address limits (docs/architecture.md, Abuse limits), against real Redis.

First the hold script's address cap on its own: seats held at once by the anonymous
holders of one client address, counted from their live holds like the per-holder cap.
Then over HTTP: what a script that drops its cookies, or forges X-Forwarded-For, gets from
one address, and that logged-in buyers and other addresses are not affected.
"""

from decimal import Decimal

import pytest
from django.test import Client

from apps.core.door import BuyerRateThrottle
from apps.core.redis import redis_client_get
from apps.reservations import services
from apps.reservations.errors import AddressLimitExceeded, HoldLimitExceeded
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.redis import inventory
from apps.reservations.redis.keys import event_keys
from apps.reservations.tests.factories import (
    EventFactory,
    SectionFactory,
    VenueFactory,
    seat_rows_from_keys,
)

EVENT = 11
T0 = 1_767_225_600_000
TTL = 60_000
SEATS = [f"A-1-{n}" for n in range(1, 21)]
HOME = inventory.AddressCap("198.51.100.7", factor=2)  # with 3 seats per buyer: 6
OTHER = inventory.AddressCap("203.0.113.9", factor=2)


@pytest.fixture
def clock_start() -> int:
    """Where ``clock`` (conftest.py) starts in these tests."""
    return T0


@pytest.fixture
def loaded(clock):
    inventory.inventory_load(
        event_id=EVENT,
        seat_prices=[(seat, 1000) for seat in SEATS],
        rows=seat_rows_from_keys(SEATS),
        focal=(0.0, 0.0),
        ttl_ms=TTL,
        max_per_hold=3,
        max_hold_ms=3 * TTL,
    )


def hold(seats, holder, cap=HOME, token=None):
    token = token or f"{EVENT}.{holder}.{seats[0]}"
    inventory.inventory_hold(
        event_id=EVENT, seats=seats, token=token, holder=holder, address_cap=cap
    )
    return token


def hold_best(count, holder, cap=HOME):
    token = f"{EVENT}.{holder}.best"
    return inventory.inventory_hold_best(
        event_id=EVENT,
        count=count,
        section_id=None,
        category_id=None,
        token=token,
        holder=holder,
        address_cap=cap,
    ).seats


def written() -> dict:
    """Everything a hold writes, to prove a refused one wrote nothing."""
    client, keys = redis_client_get(), event_keys(EVENT)
    return {
        "state": client.hgetall(keys.state),
        "holds": client.hgetall(keys.holds),
        "holders": client.hgetall(keys.holders),
        "outbox": client.xlen(keys.outbox),
        "free": client.hgetall(keys.free),
    }


def refused_at_the_address(seats, holder, cap=HOME) -> AddressLimitExceeded:
    before = written()
    with pytest.raises(AddressLimitExceeded) as info:
        hold(seats, holder, cap)
    assert written() == before
    return info.value


# --- the hold script's address cap --------------------------------------------------------


def test_anonymous_holders_of_one_address_share_its_cap(loaded):
    hold(["A-1-1", "A-1-2", "A-1-3"], "session:a")
    hold(["A-1-4", "A-1-5"], "session:b")

    refusal = refused_at_the_address(["A-1-6", "A-1-7"], "session:c")

    assert refusal.code == "address_limit_exceeded"
    assert refusal.extra == {"limit": 6, "held": 5}
    # One seat fits; then the address is full, whoever asks from it.
    hold(["A-1-6"], "session:c")
    refused_at_the_address(["A-1-7"], "session:d")
    # Another address is another cap.
    hold(["A-1-7", "A-1-8", "A-1-9"], "session:d", cap=OTHER)


def test_the_holders_own_cap_still_comes_first(loaded):
    hold(["A-1-1", "A-1-2"], "session:a")
    with pytest.raises(HoldLimitExceeded):
        hold(["A-1-3", "A-1-4"], "session:a")


def test_a_holder_without_an_address_is_not_counted(loaded):
    # What the service passes for a logged-in buyer (test_a_logged_in_buyer_... below).
    hold(["A-1-1", "A-1-2", "A-1-3"], "user:1", cap=None)
    hold(["A-1-4", "A-1-5", "A-1-6"], "session:a")
    hold(["A-1-7", "A-1-8", "A-1-9"], "session:b")
    refused_at_the_address(["A-1-10"], "session:c")


def test_best_available_holds_count_and_are_counted(loaded):
    assert len(hold_best(3, "session:a")) == 3
    hold(["A-1-20", "A-1-19"], "session:b")

    before = written()
    with pytest.raises(AddressLimitExceeded) as info:
        hold_best(2, "session:c")
    assert written() == before
    assert info.value.extra == {"limit": 6, "held": 5}
    assert len(hold_best(1, "session:c")) == 1


def test_released_reserved_and_expired_holds_free_the_room(loaded, clock):
    a = hold(["A-1-1", "A-1-2", "A-1-3"], "session:a")
    b = hold(["A-1-4", "A-1-5", "A-1-6"], "session:b")
    refused_at_the_address(["A-1-7"], "session:c")

    # Part of a hold released: that much room.
    inventory.inventory_release(event_id=EVENT, token=a, holder="session:a", seats=["A-1-3"])
    hold(["A-1-7"], "session:c")
    refused_at_the_address(["A-1-8"], "session:c")

    # A reservation is no longer a hold.
    inventory.inventory_reserve(event_id=EVENT, token=b, holder="session:b", reservation_id="r1")
    hold(["A-1-8", "A-1-9"], "session:d")
    hold(["A-1-10"], "session:e")
    refused_at_the_address(["A-1-11"], "session:f")

    # Expired holds count for nothing, before the sweep ends them as after.
    clock.advance(TTL)
    hold(["A-1-11", "A-1-12", "A-1-13"], "session:f")
    hold(["A-1-14", "A-1-15", "A-1-16"], "session:g")
    refused_at_the_address(["A-1-17"], "session:h")


def test_ended_holds_leave_nothing_under_the_address(loaded, clock):
    a = hold(["A-1-1", "A-1-2"], "session:a")
    hold(["A-1-3", "A-1-4"], "session:b")
    hold(["A-1-5"], "session:c", cap=OTHER)
    holders = redis_client_get().hgetall(event_keys(EVENT).holders)
    assert set(holders) == {
        "session:a", "session:b", "session:c", "addr:198.51.100.7", "addr:203.0.113.9"
    }  # fmt: skip

    inventory.inventory_release(event_id=EVENT, token=a, holder="session:a", seats=[])
    clock.advance(TTL)
    assert inventory.inventory_expire(event_id=EVENT) == 2

    assert redis_client_get().hgetall(event_keys(EVENT).holders) == {}


# --- over HTTP -----------------------------------------------------------------------------

SCRIPT_ADDRESS = "198.51.100.7"


@pytest.fixture
def capped_sale(db, clock, settings) -> Event:
    """An event on sale at two seats per buyer, so an address may hold 4 × 2
    (SEATS_ADDRESS_HOLD_FACTOR, 4); 24 seats, A-1-1..12 and A-2-1..12. No proxy is
    trusted: the address is REMOTE_ADDR, whatever X-Forwarded-For says."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    settings.SEATS_ADDRESS_HOLD_FACTOR = 4
    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 30
    venue = VenueFactory()
    section = SectionFactory(venue=venue, name="A", category__price=Decimal("50.00"))
    services.section_seats_generate(section=section, grid=SeatGrid(rows=2, seats_per_row=12))
    event = EventFactory(venue=venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=2)
    services.event_open_sale(event=event)
    return event


def hold_http(client: Client, event: Event, seats: list[str], **extra: object):
    return client.post(
        f"/api/events/{event.pk}/holds",
        {"seats": seats},
        content_type="application/json",
        **extra,
    )


def held_seats(event: Event) -> int:
    return len(inventory.inventory_snapshot(event_id=event.pk).taken())


def test_a_script_dropping_cookies_holds_at_most_the_address_cap(capped_sale):
    answers = []
    for n in range(1, 13):
        # A new browser every time, and a made-up X-Forwarded-For: no proxy is trusted
        # (SEATS_TRUSTED_PROXIES 0), so both are the one address.
        script = Client(REMOTE_ADDR=SCRIPT_ADDRESS)
        forged = {"HTTP_X_FORWARDED_FOR": f"10.0.0.{n}"} if n % 2 else {}
        answers.append(hold_http(script, capped_sale, [f"A-1-{n}"], **forged))

    assert [a.status_code for a in answers] == [201] * 8 + [422] * 4
    assert {a.json()["code"] for a in answers[8:]} == {"address_limit_exceeded"}
    assert answers[8].json()["limit"] == 8 and answers[8].json()["held"] == 8
    assert held_seats(capped_sale) == 8
    # A buyer elsewhere is not affected.
    assert (
        hold_http(Client(REMOTE_ADDR="192.0.2.1"), capped_sale, ["A-2-1", "A-2-2"]).status_code
        == 201
    )


def test_a_logged_in_buyer_is_not_counted_against_the_address(capped_sale, django_user_model):
    for n in range(1, 9):
        assert (
            hold_http(Client(REMOTE_ADDR=SCRIPT_ADDRESS), capped_sale, [f"A-1-{n}"]).status_code
            == 201
        )
    member = Client(REMOTE_ADDR=SCRIPT_ADDRESS)
    member.force_login(django_user_model.objects.create_user("member"))

    assert hold_http(member, capped_sale, ["A-2-1", "A-2-2"]).status_code == 201
    # ... and their own cap still holds.
    assert hold_http(member, capped_sale, ["A-2-3"]).json()["code"] == "hold_limit_exceeded"


def test_the_cap_can_be_turned_off(capped_sale, settings):
    settings.SEATS_ADDRESS_HOLD_FACTOR = 0
    for n in range(1, 13):
        assert (
            hold_http(Client(REMOTE_ADDR=SCRIPT_ADDRESS), capped_sale, [f"A-1-{n}"]).status_code
            == 201
        )


def test_behind_a_trusted_proxy_the_address_it_appends_is_the_one(capped_sale, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    for n in range(1, 9):
        # The client's own X-Forwarded-For is kept to the left of what the proxy appends.
        xff = f"10.0.0.{n}, {SCRIPT_ADDRESS}"
        response = hold_http(Client(**proxy), capped_sale, [f"A-1-{n}"], HTTP_X_FORWARDED_FOR=xff)
        assert response.status_code == 201
    refused = hold_http(
        Client(**proxy), capped_sale, ["A-1-9"], HTTP_X_FORWARDED_FOR=SCRIPT_ADDRESS
    )
    assert refused.json()["code"] == "address_limit_exceeded"
    other = hold_http(Client(**proxy), capped_sale, ["A-1-9"], HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert other.status_code == 201


def test_new_buyers_past_the_limit_are_429_and_get_no_session(capped_sale, settings):
    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 3
    for n in (1, 2, 3):
        assert (
            hold_http(Client(REMOTE_ADDR=SCRIPT_ADDRESS), capped_sale, [f"A-1-{n}"]).status_code
            == 201
        )
    before = inventory.inventory_snapshot(event_id=capped_sale.pk).seq

    late = Client(REMOTE_ADDR=SCRIPT_ADDRESS)
    refused = hold_http(late, capped_sale, ["A-1-4"], HTTP_X_FORWARDED_FOR="10.9.9.9")

    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_new_buyers"
    assert 0 < int(refused["Retry-After"]) <= settings.SEATS_NEW_BUYERS_WINDOW_S
    assert settings.SESSION_COOKIE_NAME not in late.cookies
    assert inventory.inventory_snapshot(event_id=capped_sale.pk).seq == before
    # A buyer who kept their session goes on; so does a newcomer from elsewhere.
    kept = Client(REMOTE_ADDR=SCRIPT_ADDRESS)
    kept.session  # noqa: B018 - a session already, as after loading the page
    assert hold_http(kept, capped_sale, ["A-1-4"]).status_code == 201
    assert hold_http(Client(REMOTE_ADDR="192.0.2.1"), capped_sale, ["A-1-5"]).status_code == 201


def test_a_new_buyer_refusal_is_not_kept_under_its_idempotency_key(capped_sale, settings):
    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 1
    hold_http(Client(REMOTE_ADDR=SCRIPT_ADDRESS), capped_sale, ["A-1-1"])
    key = {"headers": {"Idempotency-Key": "k"}}
    assert (
        hold_http(Client(REMOTE_ADDR=SCRIPT_ADDRESS), capped_sale, ["A-1-2"], **key).status_code
        == 429
    )

    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 0  # no limit
    retried = hold_http(Client(REMOTE_ADDR=SCRIPT_ADDRESS), capped_sale, ["A-1-2"], **key)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried


def test_cookie_less_commands_share_their_address_rate_whatever_they_forward(
    capped_sale, monkeypatch
):
    monkeypatch.setattr(BuyerRateThrottle, "THROTTLE_RATES", {"commands": "3/min"})
    codes = []
    for n in range(1, 5):
        script = Client(REMOTE_ADDR=SCRIPT_ADDRESS)
        forged = f"10.0.0.{n}"
        codes.append(
            hold_http(script, capped_sale, [f"A-1-{n}"], HTTP_X_FORWARDED_FOR=forged).status_code
        )
    assert codes == [201, 201, 201, 429]
