"""The Redis write side (docs/architecture.md, Write side: Redis), against the real Lua scripts.

Time is the scripts' only input besides the arguments: the tests pin ``inventory.clock_ms``
(the ``clock`` fixture) and move it by hand, so expiry is exact to the millisecond.
"""

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from apps.core.exceptions import DomainError
from apps.core.redis import redis_client_get
from apps.reservations.errors import (
    DuplicateSeats,
    HoldExpired,
    HoldLimitExceeded,
    HoldNotFound,
    NoSeats,
    NotHoldOwner,
    ReservationCancelled,
    ReservationNotFound,
    SaleClosed,
    SaleNotOpen,
    SeatsNotBlocked,
    SeatsNotInHold,
    SeatsUnavailable,
    UnknownSeats,
)
from apps.reservations.redis import inventory
from apps.reservations.redis.keys import event_keys
from apps.reservations.tests.factories import seat_rows_from_keys

EVENT = 7
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00.000Z
TTL = 600_000  # 10 minutes
MAX_HOLD = 1_500_000  # 25 minutes
SEATS = [f"A-1-{n}" for n in range(1, 9)]
PRICES = {seat: 2500 + 100 * n for n, seat in enumerate(SEATS)}


@pytest.fixture
def clock_start() -> int:
    """Where ``clock`` (conftest.py) starts in these tests."""
    return T0 + 123


def load(*, event_id=EVENT, seats=None, max_per_hold=4, ttl_ms=TTL, max_hold_ms=MAX_HOLD):
    seats = SEATS if seats is None else seats
    return inventory.inventory_load(
        event_id=event_id,
        seat_prices=[(seat, PRICES.get(seat, 1000)) for seat in seats],
        rows=seat_rows_from_keys(seats),
        focal=(0.0, 0.0),
        ttl_ms=ttl_ms,
        max_per_hold=max_per_hold,
        max_hold_ms=max_hold_ms,
    )


def hold(seats, token, holder="ann", event_id=EVENT):
    return inventory.inventory_hold(event_id=event_id, seats=seats, token=token, holder=holder)


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def outbox(event_id=EVENT) -> list[dict]:
    """Every envelope in the event's outbox, oldest first."""
    envelopes = []
    for _message_id, fields in redis_client_get().xrange(event_keys(event_id).outbox):
        assert set(fields) == {"seq", "envelope"}
        envelope = json.loads(fields["envelope"])
        assert int(fields["seq"]) == envelope["seq"]
        envelopes.append(envelope)
    return envelopes


def events(since=0, event_id=EVENT) -> list[tuple[int, str, dict]]:
    """(seq, type, data) of the outbox entries after the first `since`."""
    return [(e["seq"], e["type"], e["data"]) for e in outbox(event_id)[since:]]


def meta_seq(event_id=EVENT) -> int:
    return int(redis_client_get().hget(event_keys(event_id).meta, "seq"))


def fingerprint(event_id=EVENT) -> dict:
    """Everything the scripts keep for an event, to prove a refused command wrote nothing."""
    client, keys = redis_client_get(), event_keys(event_id)
    return {
        "meta": client.hgetall(keys.meta),
        "seats": client.hgetall(keys.seats),
        "state": client.hgetall(keys.state),
        "holds": client.hgetall(keys.holds),
        "holders": client.hgetall(keys.holders),
        "expiry": client.zrange(keys.expiry, 0, -1, withscores=True),
        "reservations": client.hgetall(keys.reservations),
        "outbox": client.xrange(keys.outbox),
        "row index": client.hgetall(keys.rows_free),
        "free counts": client.hgetall(keys.free),
    }


def refused(error: type[DomainError], command, **kwargs) -> DomainError:
    """Run a command that must fail with `error` and change nothing at all."""
    before = fingerprint()
    with pytest.raises(error) as info:
        command(event_id=EVENT, **kwargs)
    assert fingerprint() == before
    assert info.value.code == error.code
    return info.value


def states(snapshot) -> dict[str, tuple[str, str | None]]:
    return {seat: snapshot.seat_state(seat) for seat in SEATS}


def free_except(**taken) -> dict[str, tuple[str, str | None]]:
    expected = dict.fromkeys(SEATS, ("free", None))
    expected.update({seat.replace("_", "-"): value for seat, value in taken.items()})
    return expected


# --- races -------------------------------------------------------------------------------


def test_concurrent_holds_never_give_a_seat_to_two_buyers(clock):
    seats = [f"R-{row}-{n}" for row in range(1, 5) for n in range(1, 11)]
    load(seats=seats, max_per_hold=4)
    threads, attempts = 16, 30
    barrier = threading.Barrier(threads)
    give_up_at = time.monotonic() + 60  # bounds the run if Redis is slow, never asserted on
    client, outbox_key = redis_client_get(), event_keys(EVENT).outbox

    def buyer(i: int) -> list[tuple]:
        rng = random.Random(i)
        log, mine = [], []
        barrier.wait()
        for n in range(attempts):
            if time.monotonic() > give_up_at:
                break
            wanted = rng.sample(seats, rng.randint(1, 4))
            token, holder = f"t-{i}-{n}", f"buyer-{i}-{n}"
            # The outbox length around the call brackets the moment the script ran.
            before = client.xlen(outbox_key)
            try:
                result = hold(wanted, token, holder)
            except SeatsUnavailable as exc:
                after = client.xlen(outbox_key)
                log.append(("refused", token, holder, wanted, (exc.extra, before, after)))
            else:
                log.append(("held", token, holder, wanted, result))
                mine.append((token, holder))
            # Keep about two holds per buyer, so demand stays above the 40 seats and the
            # seats keep changing hands while the other threads try for them.
            if len(mine) > 2 or (mine and rng.random() < 0.3):
                token, holder = mine.pop(0)
                released = inventory.inventory_release(
                    event_id=EVENT, token=token, holder=holder, seats=[]
                )
                log.append(("released", token, holder, None, released))
        return log

    with ThreadPoolExecutor(max_workers=threads) as pool:
        logs = [f.result(timeout=120) for f in [pool.submit(buyer, i) for i in range(threads)]]
    entries = [entry for log in logs for entry in log]
    held = {
        token: (holder, wanted, r) for kind, token, holder, wanted, r in entries if kind == "held"
    }
    refusals = [
        (token, holder, wanted, x)
        for kind, token, holder, wanted, x in entries
        if kind == "refused"
    ]
    released = {token: r for kind, token, _, _, r in entries if kind == "released"}
    assert held and refusals and released  # the race really had winners and losers

    # The outbox is the order Redis ran the scripts in: gap-free, and the meta agrees.
    envelopes = outbox()
    assert [e["seq"] for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert meta_seq() == len(envelopes)
    assert len(envelopes) == len(held) + len(released)

    # Exactly one seat.held per successful hold, with all its seats; nothing for a refusal.
    held_events = [e for e in envelopes if e["type"] == "seat.held"]
    assert Counter(e["data"]["hold_token"] for e in held_events) == Counter(set(held))
    for e in held_events:
        _holder, wanted, result = held[e["data"]["hold_token"]]
        assert e["data"] == {
            "seats": wanted,
            "hold_token": e["data"]["hold_token"],
            "expires_at": iso(clock.now + TTL),
        }
        assert e["seq"] == result.seq
        assert result.expires_ms == clock.now + TTL
    released_events = [e for e in envelopes if e["type"] == "seat.released"]
    assert len(released_events) == len(released)
    for e in released_events:
        token = e["data"]["hold_token"]
        assert e["data"] == {"seats": held[token][1], "reason": "released", "hold_token": token}
        assert e["seq"] == released[token]["seq"]

    # Replaying the outbox in order, no seat is ever taken while someone else has it.
    owner: dict[str, str] = {}
    taken_after = [frozenset()]  # taken_after[k]: the seats taken once k events happened
    for e in envelopes:
        token = e["data"]["hold_token"]
        for seat in e["data"]["seats"]:
            if e["type"] == "seat.held":
                assert seat not in owner, f"{seat} held by {owner.get(seat)} and {token}"
                owner[seat] = token
            else:
                assert owner.pop(seat) == token
        taken_after.append(frozenset(owner))

    # The final state is exactly the successful holds minus the released ones.
    live = {token: held[token] for token in held if token not in released}
    expected_state = {}
    for token, (_holder, wanted, _result) in live.items():
        for seat in wanted:
            assert seat not in expected_state
            expected_state[seat] = f"h:{token}"
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert snapshot.state == expected_state == {s: f"h:{t}" for s, t in owner.items()}
    assert set(snapshot.holds) == set(live)
    assert snapshot.seq == len(envelopes)
    for seat in seats:
        token = expected_state.get(seat, "")[2:] or None
        assert snapshot.seat_state(seat) == (("held", token) if token else ("free", None))

    # A refused buyer got nothing, and was told which of its seats were taken.
    holders = redis_client_get().hgetall(event_keys(EVENT).holders)
    mentioned = {e["data"]["hold_token"] for e in envelopes}
    for token, holder, wanted, (extra, before, after) in refusals:
        assert set(extra) == {"seats"}
        assert token not in mentioned and token not in snapshot.holds
        assert holder not in holders
        # Some state the refusal could have seen names exactly the seats it was refused.
        assert extra["seats"] in [
            [s for s in wanted if s in taken_after[k]] for k in range(before, after + 1)
        ]
        assert extra["seats"]


def test_concurrent_holds_of_one_buyer_never_exceed_the_cap(clock):
    load(max_per_hold=4)
    barrier = threading.Barrier(len(SEATS))

    def attempt(seat: str):
        barrier.wait()
        try:
            return hold([seat], f"t-{seat}", holder="greedy")
        except HoldLimitExceeded as exc:
            return exc.extra

    with ThreadPoolExecutor(max_workers=len(SEATS)) as pool:
        results = list(pool.map(attempt, SEATS, timeout=60))
    won = [
        seat for seat, r in zip(SEATS, results, strict=True) if isinstance(r, inventory.HoldResult)
    ]
    assert len(won) == 4
    assert [r for r in results if isinstance(r, dict)] == [{"limit": 4, "held": 4}] * 4
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert snapshot.state == {seat: f"h:t-{seat}" for seat in won}
    assert [e["type"] for e in outbox()] == ["seat.held"] * 4


# --- expiry ------------------------------------------------------------------------------


def test_an_expired_hold_counts_as_free_and_is_ended_by_the_next_buyer(clock):
    load()
    first = hold(["A-1-1", "A-1-2", "A-1-3"], "t-old", holder="ann")
    assert first.expires_ms == clock.now + TTL

    clock.now = first.expires_ms - 1  # one ms before the end the seats are still ann's
    err = refused(
        SeatsUnavailable, inventory.inventory_hold, seats=["A-1-2"], token="t-new", holder="bob"
    )
    assert err.extra == {"seats": ["A-1-2"]}
    assert states(inventory.inventory_snapshot(event_id=EVENT))["A-1-2"] == ("held", "t-old")

    clock.now = first.expires_ms
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert states(snapshot) == free_except()  # expired counts as free before any sweep
    assert snapshot.taken() == []

    new = hold(["A-1-2", "A-1-4"], "t-new", holder="bob")
    assert new.seq == 3
    assert events(since=1) == [
        (
            2,
            "seat.released",
            {"seats": ["A-1-1", "A-1-2", "A-1-3"], "reason": "expired", "hold_token": "t-old"},
        ),
        (
            3,
            "seat.held",
            {
                "seats": ["A-1-2", "A-1-4"],
                "hold_token": "t-new",
                "expires_at": iso(clock.now + TTL),
            },
        ),
    ]
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert snapshot.state == {"A-1-2": "h:t-new", "A-1-4": "h:t-new"}
    assert set(snapshot.holds) == {"t-new"}
    # The old hold is gone for good, and the sweep has nothing left to say about it.
    refused(HoldNotFound, inventory.inventory_extend, token="t-old", holder="ann")
    assert inventory.inventory_expire(event_id=EVENT) == 0
    assert meta_seq() == 3


def test_a_hold_cannot_be_extended_released_or_reserved_after_it_expired(clock):
    load()
    held = hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    clock.now = held.expires_ms
    refused(HoldExpired, inventory.inventory_extend, token="t-1", holder="ann")
    refused(
        HoldExpired, inventory.inventory_reserve, token="t-1", holder="ann", reservation_id="r-1"
    )
    refused(HoldExpired, inventory.inventory_release, token="t-1", holder="ann", seats=[])
    clock.advance(3_600_000)
    refused(
        HoldExpired, inventory.inventory_reserve, token="t-1", holder="ann", reservation_id="r-1"
    )
    assert [e["type"] for e in outbox()] == ["seat.held"]


def test_the_sweep_ends_expired_holds_only(clock):
    load()
    early = hold(["A-1-1", "A-1-2", "A-1-3"], "t-early", holder="ann")
    inventory.inventory_release(event_id=EVENT, token="t-early", holder="ann", seats=["A-1-2"])
    clock.advance(60_000)
    late = hold(["A-1-4"], "t-late", holder="bob")
    clock.advance(60_000)
    kept = hold(["A-1-5"], "t-kept", holder="cat")
    inventory.inventory_extend(event_id=EVENT, token="t-kept", holder="cat")  # no-op: same ms

    assert inventory.inventory_expire(event_id=EVENT) == 0
    assert len(outbox()) == 4

    clock.now = early.expires_ms
    assert inventory.inventory_expire(event_id=EVENT) == 1
    assert events(since=4) == [
        (
            5,
            "seat.released",
            {"seats": ["A-1-1", "A-1-3"], "reason": "expired", "hold_token": "t-early"},
        ),
    ]
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert snapshot.state == {"A-1-4": "h:t-late", "A-1-5": "h:t-kept"}
    assert set(snapshot.holds) == {"t-late", "t-kept"}
    assert inventory.inventory_expire(event_id=EVENT) == 0
    assert len(outbox()) == 5

    # An extended hold is swept at its new expiry, not the old one.
    clock.now = kept.expires_ms - 1
    extended = inventory.inventory_extend(event_id=EVENT, token="t-kept", holder="cat")
    assert extended == clock.now + TTL
    clock.now = kept.expires_ms
    assert inventory.inventory_expire(event_id=EVENT) == 1
    assert events(since=5) == [
        (6, "seat.released", {"seats": ["A-1-4"], "reason": "expired", "hold_token": "t-late"}),
    ]
    assert late.expires_ms < kept.expires_ms
    assert inventory.inventory_snapshot(event_id=EVENT).state == {"A-1-5": "h:t-kept"}
    clock.now = extended
    assert inventory.inventory_expire(event_id=EVENT) == 1
    assert events(since=6) == [
        (7, "seat.released", {"seats": ["A-1-5"], "reason": "expired", "hold_token": "t-kept"}),
    ]
    assert fingerprint()["state"] == fingerprint()["holds"] == {}
    assert fingerprint()["expiry"] == [] and fingerprint()["holders"] == {}
    assert meta_seq() == 7


def test_the_sweep_ends_at_most_a_batch_oldest_first(clock, monkeypatch):
    monkeypatch.setattr(inventory, "EXPIRE_BATCH", 2)
    load()
    for n in (3, 1, 2):
        hold([f"A-1-{n}"], f"t-{n}", holder=f"buyer-{n}")
        clock.advance(1_000)
    clock.advance(TTL)
    assert inventory.inventory_expire(event_id=EVENT) == 2
    assert inventory.inventory_expire(event_id=EVENT) == 1
    assert inventory.inventory_expire(event_id=EVENT) == 0
    assert [(e[2]["hold_token"], e[2]["reason"]) for e in events(since=3)] == [
        ("t-3", "expired"),
        ("t-1", "expired"),
        ("t-2", "expired"),
    ]


def test_extend_moves_expiry_to_now_plus_ttl_but_never_past_the_max_hold(clock):
    load()
    created = clock.now
    held = hold(["A-1-1"], "t-1", holder="ann")
    assert held.expires_ms == created + TTL

    clock.advance(300_000)
    assert (
        inventory.inventory_extend(event_id=EVENT, token="t-1", holder="ann") == created + 900_000
    )
    clock.advance(540_000)
    assert (
        inventory.inventory_extend(event_id=EVENT, token="t-1", holder="ann") == created + 1_440_000
    )
    clock.advance(540_000)  # now + ttl would be created + 1_980_000
    assert (
        inventory.inventory_extend(event_id=EVENT, token="t-1", holder="ann") == created + MAX_HOLD
    )
    clock.advance(60_000)
    assert (
        inventory.inventory_extend(event_id=EVENT, token="t-1", holder="ann") == created + MAX_HOLD
    )
    assert (
        inventory.inventory_snapshot(event_id=EVENT).holds["t-1"]["expires"] == created + MAX_HOLD
    )
    assert redis_client_get().zscore(event_keys(EVENT).expiry, "t-1") == created + MAX_HOLD
    # Extending changes no seat: no event, seq unchanged.
    assert [e["type"] for e in outbox()] == ["seat.held"] and meta_seq() == 1

    clock.now = created + MAX_HOLD
    refused(HoldExpired, inventory.inventory_extend, token="t-1", holder="ann")
    assert states(inventory.inventory_snapshot(event_id=EVENT)) == free_except()


def test_extend_never_shortens_a_hold(clock):
    load()
    held = hold(["A-1-1"], "t-1", holder="ann")
    load(ttl_ms=60_000)  # staff shorten the ttl for new holds
    clock.advance(1_000)
    assert inventory.inventory_extend(event_id=EVENT, token="t-1", holder="ann") == held.expires_ms
    assert inventory.inventory_snapshot(event_id=EVENT).holds["t-1"]["expires"] == held.expires_ms


# --- every error code --------------------------------------------------------------------


def test_seats_unavailable_names_every_taken_seat(clock):
    load()
    hold(["A-1-2"], "t-ann", holder="ann")
    hold(["A-1-4"], "t-res", holder="res")
    inventory.inventory_reserve(event_id=EVENT, token="t-res", holder="res", reservation_id="r-1")
    inventory.inventory_block(event_id=EVENT, seats=["A-1-6"])
    wanted = ["A-1-1", "A-1-6", "A-1-2", "A-1-4"]
    err = refused(
        SeatsUnavailable, inventory.inventory_hold, seats=wanted, token="t-bob", holder="bob"
    )
    assert err.extra == {"seats": ["A-1-6", "A-1-2", "A-1-4"]}
    # A buyer's own live hold is no exception.
    err = refused(
        SeatsUnavailable,
        inventory.inventory_hold,
        seats=["A-1-2", "A-1-3"],
        token="t-2",
        holder="ann",
    )
    assert err.extra == {"seats": ["A-1-2"]}
    err = refused(
        SeatsUnavailable, inventory.inventory_block, seats=["A-1-1", "A-1-2", "A-1-4", "A-1-6"]
    )
    assert err.extra == {"seats": ["A-1-2", "A-1-4", "A-1-6"]}


def test_unknown_duplicate_and_missing_seats_are_refused(clock):
    load()
    hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    inventory.inventory_block(event_id=EVENT, seats=["A-1-8"])

    err = refused(
        UnknownSeats,
        inventory.inventory_hold,
        seats=["A-1-3", "Z-9-1", "Z-9-2"],
        token="t-2",
        holder="bob",
    )
    assert err.extra == {"seats": ["Z-9-1", "Z-9-2"]}
    err = refused(UnknownSeats, inventory.inventory_block, seats=["Z-9-1"])
    assert err.extra == {"seats": ["Z-9-1"]}

    err = refused(
        DuplicateSeats,
        inventory.inventory_hold,
        seats=["A-1-3", "A-1-4", "A-1-3"],
        token="t-2",
        holder="bob",
    )
    assert err.extra == {"seats": ["A-1-3"]}
    err = refused(DuplicateSeats, inventory.inventory_block, seats=["A-1-5", "A-1-5"])
    assert err.extra == {"seats": ["A-1-5"]}
    err = refused(DuplicateSeats, inventory.inventory_unblock, seats=["A-1-8", "A-1-8"])
    assert err.extra == {"seats": ["A-1-8"]}
    err = refused(
        DuplicateSeats,
        inventory.inventory_release,
        token="t-1",
        holder="ann",
        seats=["A-1-1", "A-1-1"],
    )
    assert err.extra == {"seats": ["A-1-1"]}

    assert (
        refused(NoSeats, inventory.inventory_hold, seats=[], token="t-2", holder="bob").extra == {}
    )
    assert refused(NoSeats, inventory.inventory_block, seats=[]).extra == {}
    assert refused(NoSeats, inventory.inventory_unblock, seats=[]).extra == {}


def test_hold_limit_covers_one_hold_and_a_buyers_holds_together(clock):
    load(max_per_hold=4)
    err = refused(
        HoldLimitExceeded, inventory.inventory_hold, seats=SEATS[:5], token="t-0", holder="ann"
    )
    assert err.extra == {"limit": 4}

    hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    hold(["A-1-3"], "t-2", holder="ann")
    err = refused(
        HoldLimitExceeded,
        inventory.inventory_hold,
        seats=["A-1-4", "A-1-5"],
        token="t-3",
        holder="ann",
    )
    assert err.extra == {"limit": 4, "held": 3}
    hold(["A-1-4", "A-1-5"], "t-bob", holder="bob")  # the cap is per buyer
    hold(["A-1-6"], "t-3", holder="ann")  # up to the cap exactly
    err = refused(
        HoldLimitExceeded, inventory.inventory_hold, seats=["A-1-7"], token="t-4", holder="ann"
    )
    assert err.extra == {"limit": 4, "held": 4}

    # Released seats stop counting.
    inventory.inventory_release(event_id=EVENT, token="t-1", holder="ann", seats=["A-1-1"])
    hold(["A-1-7"], "t-4", holder="ann")
    # So do the seats of expired holds, before any sweep.
    clock.advance(TTL)
    hold(["A-1-8", "A-1-1", "A-1-2", "A-1-3"], "t-5", holder="ann")


def test_sale_not_open_until_the_event_is_loaded(clock):
    assert (
        refused(SaleNotOpen, inventory.inventory_hold, seats=["A-1-1"], token="t", holder="a").extra
        == {}
    )
    refused(SaleNotOpen, inventory.inventory_block, seats=["A-1-1"])
    refused(SaleNotOpen, inventory.inventory_unblock, seats=["A-1-1"])
    refused(SaleNotOpen, inventory.inventory_close)
    refused(SaleNotOpen, inventory.inventory_snapshot)
    refused(HoldNotFound, inventory.inventory_extend, token="t", holder="a")
    refused(ReservationNotFound, inventory.inventory_cancel, reservation_id="r")
    assert list(redis_client_get().scan_iter(match=f"{event_keys(EVENT).base}*")) == []


def test_a_closed_sale_takes_no_new_holds_but_lets_live_holds_finish(clock):
    load()
    hold(["A-1-1", "A-1-2"], "t-ann", holder="ann")
    hold(["A-1-3"], "t-bob", holder="bob")
    assert inventory.inventory_close(event_id=EVENT) == 2
    refused(SaleClosed, inventory.inventory_hold, seats=["A-1-5"], token="t-cat", holder="cat")
    assert inventory.inventory_snapshot(event_id=EVENT).status == "closed"

    clock.advance(1_000)
    assert (
        inventory.inventory_extend(event_id=EVENT, token="t-ann", holder="ann") == clock.now + TTL
    )
    reserved = inventory.inventory_reserve(
        event_id=EVENT, token="t-ann", holder="ann", reservation_id="r-1"
    )
    assert reserved == {"seq": 3, "seats": ["A-1-1", "A-1-2"]}
    inventory.inventory_release(event_id=EVENT, token="t-bob", holder="bob", seats=[])
    assert [e["type"] for e in outbox()] == ["seat.held"] * 2 + ["seat.reserved", "seat.released"]

    # Re-opening keeps every seat's state and the seq.
    assert load() == 4
    assert states(inventory.inventory_snapshot(event_id=EVENT)) == free_except(
        A_1_1=("reserved", "r-1"), A_1_2=("reserved", "r-1")
    )
    assert hold(["A-1-5"], "t-cat", holder="cat").seq == 5


def test_hold_not_found(clock):
    load()
    refused(HoldNotFound, inventory.inventory_extend, token="t-x", holder="ann")
    refused(HoldNotFound, inventory.inventory_release, token="t-x", holder="ann", seats=[])
    refused(
        HoldNotFound, inventory.inventory_reserve, token="t-x", holder="ann", reservation_id="r"
    )
    # A hold that became a reservation, or was released, is no longer a hold.
    hold(["A-1-1"], "t-1", holder="ann")
    inventory.inventory_reserve(event_id=EVENT, token="t-1", holder="ann", reservation_id="r-1")
    refused(
        HoldNotFound, inventory.inventory_reserve, token="t-1", holder="ann", reservation_id="r-2"
    )
    hold(["A-1-2", "A-1-3"], "t-2", holder="ann")
    inventory.inventory_release(event_id=EVENT, token="t-2", holder="ann", seats=["A-1-3", "A-1-2"])
    refused(HoldNotFound, inventory.inventory_extend, token="t-2", holder="ann")


def test_only_the_holder_can_change_a_hold(clock):
    load()
    hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    clock.advance(1_000)
    refused(NotHoldOwner, inventory.inventory_extend, token="t-1", holder="bob")
    refused(NotHoldOwner, inventory.inventory_release, token="t-1", holder="bob", seats=[])
    refused(NotHoldOwner, inventory.inventory_release, token="t-1", holder="bob", seats=["A-1-1"])
    refused(
        NotHoldOwner, inventory.inventory_reserve, token="t-1", holder="bob", reservation_id="r"
    )
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert snapshot.holds["t-1"]["expires"] == T0 + 123 + TTL
    assert snapshot.state == {"A-1-1": "h:t-1", "A-1-2": "h:t-1"}


def test_seats_not_in_hold(clock):
    load()
    hold(["A-1-1", "A-1-2", "A-1-3"], "t-1", holder="ann")
    hold(["A-1-4"], "t-2", holder="bob")
    err = refused(
        SeatsNotInHold,
        inventory.inventory_release,
        token="t-1",
        holder="ann",
        seats=["A-1-4", "A-1-1", "A-1-8", "Z-1"],
    )
    assert err.extra == {"seats": ["A-1-4", "A-1-8", "Z-1"]}
    inventory.inventory_release(event_id=EVENT, token="t-1", holder="ann", seats=["A-1-2"])
    err = refused(
        SeatsNotInHold, inventory.inventory_release, token="t-1", holder="ann", seats=["A-1-2"]
    )
    assert err.extra == {"seats": ["A-1-2"]}


def test_seats_not_blocked(clock):
    load()
    inventory.inventory_block(event_id=EVENT, seats=["A-1-1"])
    hold(["A-1-3"], "t-1", holder="ann")
    err = refused(
        SeatsNotBlocked, inventory.inventory_unblock, seats=["A-1-1", "A-1-2", "A-1-3", "Z-1"]
    )
    assert err.extra == {"seats": ["A-1-2", "A-1-3", "Z-1"]}


def test_reservation_not_found_and_already_cancelled(clock):
    load()
    refused(ReservationNotFound, inventory.inventory_cancel, reservation_id="r-x")
    hold(["A-1-1"], "t-1", holder="ann")
    inventory.inventory_reserve(event_id=EVENT, token="t-1", holder="ann", reservation_id="r-1")
    inventory.inventory_cancel(event_id=EVENT, reservation_id="r-1")
    refused(ReservationCancelled, inventory.inventory_cancel, reservation_id="r-1")
    # Even once its seats were sold again.
    hold(["A-1-1"], "t-2", holder="bob")
    inventory.inventory_reserve(event_id=EVENT, token="t-2", holder="bob", reservation_id="r-2")
    refused(ReservationCancelled, inventory.inventory_cancel, reservation_id="r-1")
    assert states(inventory.inventory_snapshot(event_id=EVENT))["A-1-1"] == ("reserved", "r-2")


# --- what each command emits -------------------------------------------------------------


def test_release_some_then_all_seats_of_a_hold(clock):
    load()
    hold(["A-1-1", "A-1-2", "A-1-3"], "t-1", holder="ann")
    some = inventory.inventory_release(
        event_id=EVENT, token="t-1", holder="ann", seats=["A-1-3", "A-1-1"]
    )
    assert some == {"seq": 2, "seats": ["A-1-3", "A-1-1"]}
    snapshot = inventory.inventory_snapshot(event_id=EVENT)
    assert snapshot.state == {"A-1-2": "h:t-1"} and snapshot.holds["t-1"]["seats"] == ["A-1-2"]
    rest = inventory.inventory_release(event_id=EVENT, token="t-1", holder="ann", seats=[])
    assert rest == {"seq": 3, "seats": ["A-1-2"]}
    assert events(since=1) == [
        (
            2,
            "seat.released",
            {"seats": ["A-1-3", "A-1-1"], "reason": "released", "hold_token": "t-1"},
        ),
        (3, "seat.released", {"seats": ["A-1-2"], "reason": "released", "hold_token": "t-1"}),
    ]
    assert fingerprint()["state"] == fingerprint()["holds"] == fingerprint()["holders"] == {}


def test_reserve_emits_prices_and_total(clock):
    load()
    hold(["A-1-3", "A-1-1"], "t-1", holder="ann")
    result = inventory.inventory_reserve(
        event_id=EVENT, token="t-1", holder="ann", reservation_id="r-1"
    )
    assert result == {"seq": 2, "seats": ["A-1-3", "A-1-1"]}
    assert events(since=1) == [
        (
            2,
            "seat.reserved",
            {
                "seats": ["A-1-3", "A-1-1"],
                "reservation_id": "r-1",
                "hold_token": "t-1",
                "holder": "ann",
                "price_cents": [2700, 2500],
                "total_cents": 5200,
            },
        ),
    ]
    assert states(inventory.inventory_snapshot(event_id=EVENT)) == free_except(
        A_1_3=("reserved", "r-1"), A_1_1=("reserved", "r-1")
    )
    # A reservation does not expire with the hold it came from.
    clock.advance(10 * TTL)
    assert inventory.inventory_expire(event_id=EVENT) == 0
    refused(SeatsUnavailable, inventory.inventory_hold, seats=["A-1-1"], token="t-2", holder="bob")


def test_block_unblock_and_cancel_emit_their_events(clock):
    load()
    assert inventory.inventory_block(event_id=EVENT, seats=["A-1-7", "A-1-8"]) == {
        "seq": 1,
        "seats": ["A-1-7", "A-1-8"],
    }
    assert inventory.inventory_unblock(event_id=EVENT, seats=["A-1-8"]) == {
        "seq": 2,
        "seats": ["A-1-8"],
    }
    hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    inventory.inventory_reserve(event_id=EVENT, token="t-1", holder="ann", reservation_id="r-1")
    cancelled = inventory.inventory_cancel(event_id=EVENT, reservation_id="r-1")
    assert cancelled == {"seq": 5, "seats": ["A-1-1", "A-1-2"]}
    assert [(s, t, d) for s, t, d in events() if t != "seat.held" and t != "seat.reserved"] == [
        (1, "seat.blocked", {"seats": ["A-1-7", "A-1-8"]}),
        (2, "seat.released", {"seats": ["A-1-8"], "reason": "unblocked"}),
        (
            5,
            "seat.released",
            {"seats": ["A-1-1", "A-1-2"], "reason": "cancelled", "reservation_id": "r-1"},
        ),
    ]
    assert states(inventory.inventory_snapshot(event_id=EVENT)) == free_except(
        A_1_7=("blocked", None)
    )
    # Cancelled seats are on sale again; blocked ones are not.
    hold(["A-1-1", "A-1-2", "A-1-8"], "t-2", holder="bob")
    refused(SeatsUnavailable, inventory.inventory_hold, seats=["A-1-7"], token="t-3", holder="cat")


def test_block_takes_over_an_expired_hold(clock):
    load()
    held = hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    clock.now = held.expires_ms
    inventory.inventory_block(event_id=EVENT, seats=["A-1-2", "A-1-3"])
    assert events(since=1) == [
        (
            2,
            "seat.released",
            {"seats": ["A-1-1", "A-1-2"], "reason": "expired", "hold_token": "t-1"},
        ),
        (3, "seat.blocked", {"seats": ["A-1-2", "A-1-3"]}),
    ]
    assert inventory.inventory_snapshot(event_id=EVENT).state == {"A-1-2": "b", "A-1-3": "b"}


# --- the envelope ------------------------------------------------------------------------

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_envelope_shape(clock):
    load()
    hold(["A-1-1", "A-1-2"], "t-1", holder="ann")
    clock.advance(1_001)
    inventory.inventory_release(event_id=EVENT, token="t-1", holder="ann", seats=["A-1-2"])
    inventory.inventory_reserve(event_id=EVENT, token="t-1", holder="ann", reservation_id="r-1")
    inventory.inventory_block(event_id=EVENT, seats=["A-1-5", "A-1-6"])
    inventory.inventory_unblock(event_id=EVENT, seats=["A-1-5"])
    inventory.inventory_cancel(event_id=EVENT, reservation_id="r-1")
    envelopes = outbox()
    assert [e["type"] for e in envelopes] == [
        "seat.held",
        "seat.released",
        "seat.reserved",
        "seat.blocked",
        "seat.released",
        "seat.released",
    ]
    for seq, envelope in enumerate(envelopes, start=1):
        assert set(envelope) == {"id", "type", "event_id", "seq", "occurred_at", "data"}
        assert UUID_RE.match(envelope["id"]) and str(uuid.UUID(envelope["id"])) == envelope["id"]
        assert envelope["event_id"] == EVENT
        assert envelope["seq"] == seq
        assert ISO_RE.match(envelope["occurred_at"])
        assert envelope["occurred_at"] == iso(T0 + 123 if seq == 1 else T0 + 1_124)
    assert len({e["id"] for e in envelopes}) == len(envelopes)
    assert envelopes[0]["data"]["expires_at"] == iso(T0 + 123 + TTL)


def test_envelope_ids_differ_between_events_with_the_same_seq():
    load(event_id=1)
    load(event_id=2)
    hold(["A-1-1"], "t-1", event_id=1)
    hold(["A-1-1"], "t-1", event_id=2)
    ids = {outbox(1)[0]["id"], outbox(2)[0]["id"]}
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (951_868_799_999, "2000-02-29T23:59:59.999Z"),
        (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
        (1_709_251_200_000, "2024-03-01T00:00:00.000Z"),
        (1_767_225_599_999, "2025-12-31T23:59:59.999Z"),
        (4_107_542_400_007, "2100-03-01T00:00:00.007Z"),
    ],
)
def test_occurred_at_is_iso_utc_of_the_clock(clock, ms, expected):
    clock.now = ms
    load()
    hold(["A-1-1"], "t-1")
    assert iso(ms) == expected
    (envelope,) = outbox()
    assert envelope["occurred_at"] == expected
    assert envelope["data"]["expires_at"] == iso(ms + TTL)


def test_occurred_at_follows_the_real_clock():
    load()
    before = datetime.now(UTC)
    hold(["A-1-1"], "t-1")
    (envelope,) = outbox()
    occurred = datetime.fromisoformat(envelope["occurred_at"])
    assert occurred.tzinfo == UTC
    assert abs(occurred - before) < timedelta(seconds=1)
