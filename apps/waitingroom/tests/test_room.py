"""The waiting room's rules against real Redis (docs/architecture.md, Waiting room).

Time is ``inventory.clock_ms``, moved by hand, so admissions per tick are exact.
"""

import pytest
from django.core.exceptions import ValidationError
from prometheus_client import REGISTRY

from apps.reservations import services as sale
from apps.reservations.errors import NotAdmitted
from apps.waitingroom import passes, services, store
from apps.waitingroom.errors import NotInQueue, NotYourTurn, PlaceExpired, TooManyPlaces
from apps.waitingroom.selectors import room_figures, room_status
from apps.waitingroom.tests.helpers import START_MS, tick

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _places_per_address_unlimited(settings):
    """Every buyer here joins from one address (10.0.0.1): no limit, unless a test sets one.
    The room, the clock and ``update``: conftest.py."""
    settings.SEATS_ROOM_PLACES_PER_ADDRESS = 0


def join(room, buyer, address="10.0.0.1"):
    return services.room_join(event_id=room.event_id, buyer=buyer, address=address)


def ticket(room, buyer):
    return room_status(event_id=room.event_id, buyer=buyer)["place"]["ticket"]


def test_early_arrivals_are_drawn_in_random_order_at_the_start(room, clock):
    buyers = [f"session:{i:03d}" for i in range(60)]
    for buyer in buyers:
        status = join(room, buyer)
        assert status["state"] == "before"
        assert status["place"]["ticket"] is None  # no number before the draw
    assert room_figures(event_id=room.event_id)["waiting"] == 60
    clock.now = START_MS
    tickets = [ticket(room, buyer) for buyer in buyers]
    assert sorted(tickets) == list(range(1, 61))
    assert tickets != list(range(1, 61))  # 1 in 60! that a fair draw keeps arrival order
    # Later arrivals queue behind everyone drawn, in arrival order.
    assert [join(room, f"late:{i}")["place"]["ticket"] for i in range(3)] == [61, 62, 63]


def test_one_place_per_buyer(room, clock):
    first = join(room, "session:a")
    clock.now = START_MS + 5
    assert join(room, "session:a")["place"]["ticket"] == ticket(room, "session:a")
    assert join(room, "session:b")["place"]["ticket"] == 2
    assert room_figures(event_id=room.event_id)["waiting"] == 2
    assert first["place"]["ticket"] is None  # drawn at the start


def test_admission_follows_the_rate_and_carries_fractions(room, clock):
    clock.now = START_MS
    for i in range(200):
        join(room, f"session:{i}")
    services.rooms_advance()  # the first tick at the start admits nothing yet
    for _ in range(90):
        tick(clock, 700)  # 63 s at 60 a minute
    figures = room_figures(event_id=room.event_id)
    assert figures["admitted"] == 63
    assert figures["waiting"] == 200 - 63
    status = room_status(event_id=room.event_id, buyer="session:0")
    assert status["serving"] == 63
    # The operator sees the same figures (the celery process's metrics).
    sample = REGISTRY.get_sample_value
    assert sample("seats_room", {"event": str(room.event_id), "figure": "admitted"}) == 63
    assert sample("seats_room", {"event": str(room.event_id), "figure": "waiting"}) == 137


def test_a_ticker_that_was_down_admits_no_burst(room, clock):
    clock.now = START_MS
    for i in range(100):
        join(room, f"session:{i}")
    services.rooms_advance()
    tick(clock, 3_600_000)  # an hour without ticks counts as MAX_TICK_GAP_MS
    assert room_figures(event_id=room.event_id)["admitted"] == 5


def test_positions_and_the_pass(room, clock):
    clock.now = START_MS
    join(room, "session:a")
    join(room, "session:b")
    services.rooms_advance()
    b = room_status(event_id=room.event_id, buyer="session:b")["place"]
    assert (b["position"], b["ahead"], b["admitted"]) == (2, 1, False)
    assert b["eta_seconds"] == 2
    with pytest.raises(NotYourTurn):
        services.room_pass_claim(event_id=room.event_id, buyer="session:b")
    tick(clock, 1000)  # one admitted
    b = room_status(event_id=room.event_id, buyer="session:b")["place"]
    assert (b["position"], b["ahead"]) == (1, 0)
    a_pass = services.room_pass_claim(event_id=room.event_id, buyer="session:a")
    cookies = {passes.pass_cookie_name(room.event_id): a_pass.token}
    assert passes.pass_valid(cookies, event_id=room.event_id, buyer="session:a")
    # Bound to its buyer and its event.
    assert not passes.pass_valid(cookies, event_id=room.event_id, buyer="session:b")
    assert not passes.pass_valid(
        {passes.pass_cookie_name(room.event_id + 1): a_pass.token},
        event_id=room.event_id + 1,
        buyer="session:a",
    )
    # Taking it again gives the same expiry.
    again = services.room_pass_claim(event_id=room.event_id, buyer="session:a")
    assert again.expires_at == a_pass.expires_at
    # It expires with pass_minutes, and the place is spent: a new one at the back.
    clock.now += 10 * 60_000 + 1
    assert not passes.pass_valid(cookies, event_id=room.event_id, buyer="session:a")
    with pytest.raises(PlaceExpired):
        services.room_pass_claim(event_id=room.event_id, buyer="session:a")
    assert join(room, "session:a")["place"]["ticket"] == 3


def test_a_place_not_claimed_in_time_is_dropped(room, clock, settings):
    clock.now = START_MS
    join(room, "session:a")
    join(room, "session:b")
    services.rooms_advance()
    tick(clock, 2000)  # both admitted
    services.room_pass_claim(event_id=room.event_id, buyer="session:b")
    figures = room_figures(event_id=room.event_id)
    assert (figures["active"], figures["dropped"]) == (2, 0)  # a is on the way
    tick(clock, settings.SEATS_ROOM_CLAIM_S * 1000)
    figures = room_figures(event_id=room.event_id)
    assert (figures["admitted"], figures["active"], figures["dropped"]) == (2, 1, 1)
    with pytest.raises(PlaceExpired):
        services.room_pass_claim(event_id=room.event_id, buyer="session:a")


def test_the_cap_admits_as_active_buyers_leave(room, clock, update):
    update(room, rate_per_minute=None, max_active=2)
    clock.now = START_MS
    for buyer in "abcde":
        join(room, f"session:{buyer}")
    services.rooms_advance()
    assert room_figures(event_id=room.event_id)["admitted"] == 2
    services.room_pass_claim(event_id=room.event_id, buyer="session:a")
    services.room_pass_claim(event_id=room.event_id, buyer="session:b")
    tick(clock, 1000)
    assert room_figures(event_id=room.event_id)["admitted"] == 2  # both still active
    tick(clock, 10 * 60_000)  # their passes run out
    figures = room_figures(event_id=room.event_id)
    assert (figures["admitted"], figures["active"]) == (4, 2)


def test_pause_and_resume(room, clock, update):
    clock.now = START_MS
    for i in range(10):
        join(room, f"session:{i}")
    services.rooms_advance()
    update(room, paused=True)
    for _ in range(5):
        tick(clock, 1000)
    assert room_figures(event_id=room.event_id)["state"] == "paused"
    assert room_figures(event_id=room.event_id)["admitted"] == 0
    update(room, paused=False)
    tick(clock, 1000)  # the time spent paused earned nothing
    assert room_figures(event_id=room.event_id)["admitted"] == 1
    update(room, rate_per_minute=600)
    tick(clock, 1000)
    assert room_figures(event_id=room.event_id)["admitted"] == 11 - 1  # 10 more, all there are


def test_the_room_survives_a_restart_of_every_process(room, clock):
    """Nothing of the room lives in a process: new script objects and clients (as after a
    restart) see the same queue, admissions and passes."""
    clock.now = START_MS
    for i in range(5):
        join(room, f"session:{i}")
    services.rooms_advance()
    tick(clock, 2000)
    a_pass = services.room_pass_claim(event_id=room.event_id, buyer="session:0")
    from apps.core.redis import redis_client_get

    store._script.cache_clear()
    redis_client_get.cache_clear()
    tick(clock, 1000)
    assert room_figures(event_id=room.event_id)["admitted"] == 3
    assert ticket(room, "session:4") == 5
    again = services.room_pass_claim(event_id=room.event_id, buyer="session:0")
    assert again.expires_at == a_pass.expires_at


def test_commands_need_a_pass_while_the_room_is_on(room, clock, update):
    clock.now = START_MS
    with pytest.raises(NotAdmitted):
        sale.hold_create(event_id=room.event_id, holder="session:a", seats=["A-1-1"])
    hold = sale.hold_create(
        event_id=room.event_id, holder="session:a", seats=["A-1-1"], admitted=True
    )
    for command in (sale.hold_extend, sale.hold_reserve):
        with pytest.raises(NotAdmitted):
            command(token=hold.token, holder="session:a")
    with pytest.raises(NotAdmitted):
        sale.hold_release(token=hold.token, holder="session:a")
    # Turned off, the room asks for nothing, at once.
    update(room, enabled=False)
    sale.hold_reserve(token=hold.token, holder="session:a")
    assert room_status(event_id=room.event_id, buyer="session:a")["state"] == "off"
    assert services.room_pass_claim(event_id=room.event_id, buyer="session:a") is None


def test_places_per_address_are_limited(room, clock, settings):
    settings.SEATS_ROOM_PLACES_PER_ADDRESS = 2
    join(room, "session:a", address="10.0.0.9")
    join(room, "session:b", address="10.0.0.9")
    join(room, "session:a", address="10.0.0.9")  # the same place again is not a new one
    with pytest.raises(TooManyPlaces):
        join(room, "session:c", address="10.0.0.9")
    join(room, "session:c", address="10.0.0.10")


def test_a_buyer_without_a_place_has_no_pass(room, clock):
    clock.now = START_MS
    with pytest.raises(NotInQueue):
        services.room_pass_claim(event_id=room.event_id, buyer="session:nobody")


def test_a_room_needs_a_rate_or_a_cap(room):
    room.rate_per_minute = None
    with pytest.raises(ValidationError):
        room.full_clean()
