"""The Lua inventory against a plain Python model of its rules (docs/architecture.md, Write
side: Redis).

Hypothesis runs random command sequences on a small event through the real scripts and
through ``Model`` below. After every step the command's outcome, every seat's state, the
holds, the seq and the events appended to the outbox must be exactly what the model says.
"""

import itertools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.core.exceptions import DomainError
from apps.core.redis import redis_client_get
from apps.reservations.redis import inventory
from apps.reservations.redis.keys import event_keys
from apps.reservations.tests.clock import Clock
from apps.reservations.tests.factories import seat_rows_from_keys

SEATS = [f"A-1-{n}" for n in range(1, 9)]
UNKNOWN = "Z-9-9"
PRICES = {seat: 1000 + 150 * i for i, seat in enumerate(SEATS)}
HOLDERS = ["ann", "bob", "cat"]
TTL = 10_000
MAX_HOLD = 16_000  # small next to the ttl, so a second extend already meets the bound
MAX_PER_HOLD = 3
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00.000Z

# A fresh event per example: no example sees another's seats, seq or outbox.
_event_ids = itertools.count(1)


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class Refused(Exception):
    def __init__(self, code: str, **extra) -> None:
        super().__init__(code)
        self.code, self.extra = code, extra


@dataclass
class Hold:
    holder: str
    seats: list[str]
    created: int
    expires: int


class Model:
    """The rules, written out plainly. Every command checks everything before it changes
    anything, so a refusal leaves the model untouched, as the scripts must."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.status = "on_sale"
        self.seq = 0
        self.state: dict[str, str] = {}  # seat → "h:<token>" | "r:<id>" | "b"; free absent
        self.holds: dict[str, Hold] = {}
        self.reservations: dict[str, dict] = {}
        self.emitted: list[tuple[int, str, str, dict]] = []  # since the last comparison

    def emit(self, event_type: str, data: dict) -> int:
        self.seq += 1
        self.emitted.append((self.seq, event_type, iso(self.now), data))
        return self.seq

    def live(self, token: str) -> bool:
        return token in self.holds and self.holds[token].expires > self.now

    def seat_state(self, seat: str) -> tuple[str, str | None]:
        value = self.state.get(seat)
        if value is None:
            return "free", None
        if value == "b":
            return "blocked", None
        if value.startswith("r:"):
            return "reserved", value[2:]
        token = value[2:]
        return ("held", token) if self.live(token) else ("free", None)

    def end(self, token: str, reason: str) -> None:
        hold = self.holds.pop(token)
        freed = [seat for seat in hold.seats if self.state.get(seat) == f"h:{token}"]
        for seat in freed:
            del self.state[seat]
        if freed:
            self.emit("seat.released", {"seats": freed, "reason": reason, "hold_token": token})

    @staticmethod
    def no_duplicates(seats: list[str]) -> None:
        seen = set()
        for seat in seats:
            if seat in seen:
                raise Refused("duplicate_seats", seats=[seat])
            seen.add(seat)

    def takeable(self, seats: list[str]) -> list[str]:
        """Refuse unless every seat exists and is free or held by an expired hold; returns
        those expired holds, to be ended first, in the order their seats were asked for."""
        self.no_duplicates(seats)
        unknown = [seat for seat in seats if seat not in PRICES]
        if unknown:
            raise Refused("unknown_seats", seats=unknown)
        taken = [seat for seat in seats if self.seat_state(seat)[0] != "free"]
        if taken:
            raise Refused("seats_unavailable", seats=taken)
        stale = []
        for seat in seats:
            value = self.state.get(seat)
            if value is not None and value[2:] not in stale:
                stale.append(value[2:])
        return stale

    def own_hold(self, token: str, holder: str) -> Hold:
        hold = self.holds.get(token)
        if hold is None:
            raise Refused("hold_not_found")
        if hold.holder != holder:
            raise Refused("not_hold_owner")
        if hold.expires <= self.now:
            raise Refused("hold_expired")
        return hold

    # --- commands: each returns what the script replies (beyond errors) ---

    def hold(self, seats: list[str], token: str, holder: str) -> dict:
        if self.status != "on_sale":
            raise Refused("sale_closed")
        if not seats:
            raise Refused("no_seats")
        if len(seats) > MAX_PER_HOLD:
            raise Refused("hold_limit_exceeded", limit=MAX_PER_HOLD)
        stale = self.takeable(seats)
        held = sum(
            len(h.seats) for t, h in self.holds.items() if h.holder == holder and self.live(t)
        )
        if held + len(seats) > MAX_PER_HOLD:
            raise Refused("hold_limit_exceeded", limit=MAX_PER_HOLD, held=held)
        for stale_token in stale:
            self.end(stale_token, "expired")
        expires = self.now + TTL
        self.holds[token] = Hold(holder, list(seats), self.now, expires)
        self.state.update(dict.fromkeys(seats, f"h:{token}"))
        data = {"seats": seats, "hold_token": token, "expires_at": iso(expires)}
        return {"seq": self.emit("seat.held", data), "expires": expires}

    def extend(self, token: str, holder: str) -> int:
        hold = self.own_hold(token, holder)
        hold.expires = max(hold.expires, min(self.now + TTL, hold.created + MAX_HOLD))
        return hold.expires

    def release(self, token: str, holder: str, seats: list[str]) -> dict:
        hold = self.own_hold(token, holder)
        wanted = seats or list(hold.seats)
        self.no_duplicates(wanted)
        foreign = [seat for seat in wanted if seat not in hold.seats]
        if foreign:
            raise Refused("seats_not_in_hold", seats=foreign)
        for seat in wanted:
            del self.state[seat]
        hold.seats = [seat for seat in hold.seats if seat not in wanted]
        if not hold.seats:
            del self.holds[token]
        data = {"seats": wanted, "reason": "released", "hold_token": token}
        return {"seq": self.emit("seat.released", data), "seats": wanted}

    def reserve(self, token: str, holder: str, reservation_id: str) -> dict:
        hold = self.own_hold(token, holder)
        del self.holds[token]
        self.state.update(dict.fromkeys(hold.seats, f"r:{reservation_id}"))
        self.reservations[reservation_id] = {"seats": hold.seats, "cancelled": False}
        cents = [PRICES[seat] for seat in hold.seats]
        data = {
            "seats": hold.seats,
            "reservation_id": reservation_id,
            "hold_token": token,
            "holder": holder,
            "price_cents": cents,
            "total_cents": sum(cents),
        }
        return {"seq": self.emit("seat.reserved", data), "seats": hold.seats}

    def expire(self) -> int:
        due = sorted((h.expires, t) for t, h in self.holds.items() if h.expires <= self.now)
        for _expires, token in due:
            self.end(token, "expired")
        return len(due)

    def block(self, seats: list[str]) -> dict:
        if not seats:
            raise Refused("no_seats")
        for stale_token in self.takeable(seats):
            self.end(stale_token, "expired")
        self.state.update(dict.fromkeys(seats, "b"))
        return {"seq": self.emit("seat.blocked", {"seats": seats}), "seats": seats}

    def unblock(self, seats: list[str]) -> dict:
        if not seats:
            raise Refused("no_seats")
        self.no_duplicates(seats)
        not_blocked = [seat for seat in seats if self.state.get(seat) != "b"]
        if not_blocked:
            raise Refused("seats_not_blocked", seats=not_blocked)
        for seat in seats:
            del self.state[seat]
        data = {"seats": seats, "reason": "unblocked"}
        return {"seq": self.emit("seat.released", data), "seats": seats}

    def cancel(self, reservation_id: str) -> dict:
        reservation = self.reservations.get(reservation_id)
        if reservation is None:
            raise Refused("reservation_not_found")
        if reservation["cancelled"]:
            raise Refused("reservation_cancelled")
        reservation["cancelled"] = True
        for seat in reservation["seats"]:
            if self.state.get(seat) == f"r:{reservation_id}":
                del self.state[seat]
        data = {"seats": reservation["seats"], "reason": "cancelled"}
        data["reservation_id"] = reservation_id
        return {"seq": self.emit("seat.released", data), "seats": reservation["seats"]}

    def close(self) -> int:
        self.status = "closed"
        return self.seq

    def reopen(self) -> int:
        self.status = "on_sale"
        return self.seq


def load(event_id: int) -> int:
    return inventory.inventory_load(
        event_id=event_id,
        seat_prices=list(PRICES.items()),
        rows=seat_rows_from_keys(list(PRICES)),
        focal=(0.0, 0.0),
        ttl_ms=TTL,
        max_per_hold=MAX_PER_HOLD,
        max_hold_ms=MAX_HOLD,
    )


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """Like one_of, with weights (one_of drops a repeated strategy, so repeating one
    does not weight it)."""
    return st.sampled_from([s for n, s in choices for _ in range(n)]).flatmap(lambda s: s)


# Mostly sensible seat lists; sometimes anything (empty, too long, duplicates, unknown).
sensible_seats = st.lists(st.sampled_from(SEATS), min_size=1, max_size=MAX_PER_HOLD, unique=True)
seat_lists = weighted(
    (3, sensible_seats),
    (1, st.lists(st.sampled_from([*SEATS, UNKNOWN]), max_size=MAX_PER_HOLD + 1)),
)
# None: the hold's own buyer; a name: whoever that is (maybe someone else).
acting_holders = st.sampled_from([None, None, None, *HOLDERS])


class InventoryMachine(RuleBasedStateMachine):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock  # the scripts' time (the ``clock`` fixture), moved by the rules

    @initialize(
        first_holds=st.lists(st.tuples(sensible_seats, st.sampled_from(HOLDERS)), max_size=4)
    )
    def open_sale(self, first_holds):
        self.event_id = next(_event_ids)
        self.keys = event_keys(self.event_id)
        client = redis_client_get()
        assert not client.exists(*self.keys.script_keys())  # a clean event
        self.clock.now = T0 + 1_000 * self.event_id
        self.model = Model(self.clock.now)
        self.counter = itertools.count(1)
        self.asked_by: dict[str, str] = {}  # token → the holder who asked for it
        self.asked_seats: dict[str, list[str]] = {}
        self.last_message = "0-0"
        self.message_ids: set[str] = set()
        assert load(self.event_id) == 0
        # A few holds to start from, so most examples have holds to extend, release, etc.
        for seats, holder in first_holds:
            self.hold(seats, holder)

    def compare(self, command, model_command) -> None:
        """Run a command on both sides; the outcome (reply, or error code and details) must
        agree."""
        try:
            actual = ("ok", command())
        except DomainError as exc:
            actual = (exc.code, exc.extra)
        try:
            expected = ("ok", model_command())
        except Refused as refusal:
            expected = (refusal.code, refusal.extra)
        assert actual == expected

    def live_holds_exist(self) -> bool:
        return any(h.expires > self.clock.now for h in self.model.holds.values())

    def holds_exist(self) -> bool:
        return bool(self.model.holds)

    def has_reservations(self) -> bool:
        return bool(self.model.reservations)

    def pick(self, data, current: list[str], ever: list[str], missing: str) -> str:
        """Mostly something that exists now; sometimes one that is gone, or never was."""
        choices = [(1, st.just(missing))]
        if current:
            choices.append((6, st.sampled_from(current)))
        if ever:
            choices.append((1, st.sampled_from(ever)))
        return data.draw(weighted(*choices), label="ref")

    def pick_hold(self, data, holder: str | None) -> tuple[str, str]:
        live = sorted(t for t, h in self.model.holds.items() if h.expires > self.clock.now)
        token = self.pick(data, live, sorted(self.asked_by), "t-none")
        return token, holder or self.asked_by.get(token, HOLDERS[0])

    # --- buyers ---

    @rule(seats=seat_lists, holder=st.sampled_from(HOLDERS))
    def hold(self, seats, holder):
        token = f"t{next(self.counter):03d}"
        self.asked_by[token], self.asked_seats[token] = holder, seats

        def command():
            result = inventory.inventory_hold(
                event_id=self.event_id, seats=seats, token=token, holder=holder
            )
            return {"seq": result.seq, "expires": result.expires_ms}

        self.compare(command, lambda: self.model.hold(seats, token, holder))

    @rule(holder=acting_holders, data=st.data())
    @precondition(live_holds_exist)
    def extend(self, holder, data):
        token, holder = self.pick_hold(data, holder)
        self.compare(
            lambda: inventory.inventory_extend(event_id=self.event_id, token=token, holder=holder),
            lambda: self.model.extend(token, holder),
        )

    @rule(holder=acting_holders, data=st.data())
    @precondition(live_holds_exist)
    def release(self, holder, data):
        token, holder = self.pick_hold(data, holder)
        hold = self.model.holds.get(token)
        own = hold.seats if hold else self.asked_seats.get(token) or SEATS
        seats = data.draw(
            weighted(
                (1, st.just([])),  # all of them
                (3, st.lists(st.sampled_from(own), min_size=1, max_size=len(own), unique=True)),
                (1, st.lists(st.sampled_from(own), min_size=1, max_size=MAX_PER_HOLD + 1)),
                (1, seat_lists),
            ),
            label="seats",
        )
        self.compare(
            lambda: inventory.inventory_release(
                event_id=self.event_id, token=token, holder=holder, seats=seats
            ),
            lambda: self.model.release(token, holder, seats),
        )

    @rule(holder=acting_holders, data=st.data())
    @precondition(live_holds_exist)
    def reserve(self, holder, data):
        token, holder = self.pick_hold(data, holder)
        reservation_id = f"r{next(self.counter):03d}"
        self.compare(
            lambda: inventory.inventory_reserve(
                event_id=self.event_id, token=token, holder=holder, reservation_id=reservation_id
            ),
            lambda: self.model.reserve(token, holder, reservation_id),
        )

    # --- staff ---

    @rule(seats=seat_lists)
    def block(self, seats):
        self.compare(
            lambda: inventory.inventory_block(event_id=self.event_id, seats=seats),
            lambda: self.model.block(seats),
        )

    @rule(data=st.data())
    def unblock(self, data):
        blocked = sorted(seat for seat, value in self.model.state.items() if value == "b")
        some_blocked = st.lists(
            st.sampled_from(blocked or SEATS), min_size=1, max_size=len(blocked) or 1, unique=True
        )
        seats = data.draw(weighted((2, some_blocked), (1, seat_lists)), label="seats")
        self.compare(
            lambda: inventory.inventory_unblock(event_id=self.event_id, seats=seats),
            lambda: self.model.unblock(seats),
        )

    @rule(data=st.data())
    @precondition(has_reservations)
    def cancel(self, data):
        reservations = self.model.reservations
        active = sorted(r for r in reservations if not reservations[r]["cancelled"])
        reservation_id = self.pick(data, active, sorted(reservations), "r-none")
        self.compare(
            lambda: inventory.inventory_cancel(
                event_id=self.event_id, reservation_id=reservation_id
            ),
            lambda: self.model.cancel(reservation_id),
        )

    @rule(sale=st.sampled_from(["reopen", "reopen", "close"]))
    def close_or_reopen(self, sale):
        # Mostly a no-op reopen (loading again keeps state and seq): a closed sale refuses
        # every hold, and too many of those would starve the rest of the machine.
        if sale == "reopen":
            self.compare(lambda: load(self.event_id), self.model.reopen)
        else:
            self.compare(
                lambda: inventory.inventory_close(event_id=self.event_id), self.model.close
            )

    # --- time ---

    @rule(
        ms=weighted(
            (3, st.integers(0, TTL // 4)),
            (1, st.integers(0, 2 * TTL)),
            (1, st.sampled_from([1, TTL - 1, TTL, TTL + 1])),
        ),
        then_sweep=st.booleans(),
    )
    def advance(self, ms, then_sweep):
        self.clock.advance(ms)
        self.model.now = self.clock.now
        if then_sweep:
            self.sweep()

    @rule(
        data=st.data(),
        delta=st.integers(-1, 1),
        then=st.sampled_from(["sweep", "extend", "release", "reserve", "take", "nothing"]),
        holder=acting_holders,
    )
    @precondition(holds_exist)
    def at_expiry(self, data, delta, then, holder):
        """Land on a hold's expiry exactly, or one ms either side of it, and act on the hold
        or its seats there, where an off-by-one in any script would show."""
        # Holds that end now or later; ones long expired say nothing about the boundary.
        ahead = [t for t, h in self.model.holds.items() if h.expires >= self.clock.now - 1]
        token = data.draw(st.sampled_from(sorted(ahead or self.model.holds)), label="token")
        hold = self.model.holds[token]
        self.clock.now = max(self.clock.now, hold.expires + delta)
        self.model.now = self.clock.now
        holder = holder or hold.holder
        if then == "sweep":
            self.sweep()
        elif then == "extend":
            self.compare(
                lambda: inventory.inventory_extend(
                    event_id=self.event_id, token=token, holder=holder
                ),
                lambda: self.model.extend(token, holder),
            )
        elif then == "release":
            seats = list(hold.seats)
            self.compare(
                lambda: inventory.inventory_release(
                    event_id=self.event_id, token=token, holder=holder, seats=seats
                ),
                lambda: self.model.release(token, holder, seats),
            )
        elif then == "reserve":
            reservation_id = f"r{next(self.counter):03d}"
            self.compare(
                lambda: inventory.inventory_reserve(
                    event_id=self.event_id,
                    token=token,
                    holder=holder,
                    reservation_id=reservation_id,
                ),
                lambda: self.model.reserve(token, holder, reservation_id),
            )
        elif then == "take":  # the same or another buyer wants some of these seats
            self.hold(data.draw(st.permutations(hold.seats), label="seats")[:2], holder)

    def sweep(self):
        self.compare(lambda: inventory.inventory_expire(event_id=self.event_id), self.model.expire)

    # --- after every step ---

    @invariant()
    def row_index_matches_the_states(self):
        # Every script that frees or takes a seat keeps best available's index exact.
        assert inventory.inventory_index_check(event_id=self.event_id) == []

    @invariant()
    def same_state_and_events(self):
        snapshot = inventory.inventory_snapshot(event_id=self.event_id)
        model = self.model
        assert (snapshot.seq, snapshot.status) == (model.seq, model.status)
        assert {seat: snapshot.seat_state(seat) for seat in SEATS} == {
            seat: model.seat_state(seat) for seat in SEATS
        }
        assert sorted(snapshot.taken()) == sorted(
            seat for seat in SEATS if model.seat_state(seat)[0] != "free"
        )
        assert snapshot.state == model.state
        assert snapshot.holds == {
            token: {
                "holder": h.holder,
                "seats": h.seats,
                "created": h.created,
                "expires": h.expires,
            }
            for token, h in model.holds.items()
        }

        client = redis_client_get()
        appended = client.xrange(self.keys.outbox, min=f"({self.last_message}")
        if appended:
            self.last_message = appended[-1][0]
        actual = []
        for _message_id, fields in appended:
            envelope = json.loads(fields["envelope"])
            assert int(fields["seq"]) == envelope["seq"]
            assert envelope["event_id"] == self.event_id
            assert str(uuid.UUID(envelope["id"])) == envelope["id"]
            assert envelope["id"] not in self.message_ids
            self.message_ids.add(envelope["id"])
            actual.append(
                (envelope["seq"], envelope["type"], envelope["occurred_at"], envelope["data"])
            )
        assert actual == model.emitted
        model.emitted = []
        assert int(client.hget(self.keys.meta, "seq")) == model.seq
        assert client.xlen(self.keys.outbox) == model.seq


def test_scripts_follow_the_model(clock):
    run_state_machine_as_test(
        lambda: InventoryMachine(clock),
        settings=settings(max_examples=60, stateful_step_count=30, deadline=None),
    )
