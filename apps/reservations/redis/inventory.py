"""The seat inventory in Redis: thin Python over the Lua scripts beside this file.

Every state change is one script run: check, change, bump the event's seq, append the
envelope to the outbox, atomically (docs/architecture.md, Write side: Redis). This module
only marshals arguments and turns a script's error code into the matching domain exception.
"""

import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from redis.commands.core import Script

from apps.core import logs
from apps.core.redis import redis_client_get, redis_script
from apps.reservations.best_available import SeatRow
from apps.reservations.errors import BY_CODE
from apps.reservations.redis.keys import event_keys, events_index_key

SCRIPTS_DIR = Path(__file__).resolve().parent
# How many expired holds one sweep call ends per event; bounds the script's run time so
# a backlog never blocks Redis for long.
EXPIRE_BATCH = 200


def clock_ms() -> int:
    """Milliseconds since the epoch. Tests replace it to move time."""
    return int(time.time() * 1000)


# What each script is made of, beyond prelude.lua and its own file.
_SCRIPT_PARTS = {"hold": ["best"], "index_check": ["best"]}


@cache
def _script(name: str) -> Script:
    parts = ["prelude", *_SCRIPT_PARTS.get(name, []), name]
    source = "\n".join((SCRIPTS_DIR / f"{part}.lua").read_text() for part in parts)
    return redis_script(source)


def _run(name: str, event_id: int, **args: Any) -> dict:
    payload = {"now": clock_ms(), "event_id": event_id, "nonce": uuid.uuid4().hex}
    request_id = logs.request_id.get()
    if request_id is not None:
        payload["request_id"] = request_id  # into the envelopes (apps/core/logs.py)
    payload.update(args)
    raw = _script(name)(keys=event_keys(event_id).script_keys(), args=[json.dumps(payload)])
    result = json.loads(raw)
    code = result.pop("error", None)
    if code is not None:
        raise BY_CODE[code](**result)
    return result


@dataclass(frozen=True)
class HoldResult:
    seq: int
    expires_ms: int
    seats: list[str]


def inventory_load(
    *,
    event_id: int,
    seat_prices: list[tuple[str, int]],
    rows: list[SeatRow],
    focal: tuple[float, float],
    ttl_ms: int,
    max_per_hold: int,
    max_hold_ms: int,
) -> int:
    """Load (or re-open) an event's seats and build its row index; returns its seq.

    The event joins the events index first, then the script loads it: the index is one
    global key, which a script of one event must not touch (every key of a script in one
    Redis Cluster slot), so the two cannot be one atomic step, and this order leaves no
    crash point with an event on sale that the relay and the sweep never see. Indexed
    without an inventory (the script failed or never ran) is harmless: the relay finds no
    outbox and the sweep no holds, `reconcile` says the sale did not open, and opening
    again loads it.
    """
    redis_client_get().sadd(events_index_key(), event_id)
    result = _run(
        "load",
        event_id,
        seats=seat_prices,
        # Bound and geometry as text: Lua would print numbers with 14 digits, and the
        # script must compare exactly what the reference model computes.
        rows=[
            {
                "id": row.key,
                "section": row.section_id,
                "category": row.category_id,
                "bound": repr(row.bound),
                "geometry": json.dumps({"k": row.keys, "x": row.xs, "y": row.ys}),
            }
            for row in rows
        ],
        focal=focal,
        ttl_ms=ttl_ms,
        max_per_hold=max_per_hold,
        max_hold_ms=max_hold_ms,
    )
    return result["seq"]


def inventory_close(*, event_id: int) -> int:
    return _run("close", event_id)["seq"]


@dataclass(frozen=True)
class AddressCap:
    """The cap shared by the anonymous holders of one client address (hold.lua): at most
    ``factor`` times the event's seats per buyer held at once."""

    address: str
    factor: int

    def args(self) -> dict[str, Any]:
        return {"address": f"addr:{self.address}", "address_factor": self.factor}


def inventory_hold(
    *,
    event_id: int,
    seats: list[str],
    token: str,
    holder: str,
    address_cap: AddressCap | None = None,
    admitted: bool = False,
) -> HoldResult:
    """``admitted``: the buyer showed a valid waiting-room pass (prelude.lua,
    admission_refusal), as for every buyer command below."""
    cap = address_cap.args() if address_cap else {}
    result = _run(
        "hold", event_id, seats=seats, token=token, holder=holder, admitted=admitted, **cap
    )
    return HoldResult(result["seq"], result["expires"], result["seats"])


def inventory_hold_best(
    *,
    event_id: int,
    count: int,
    section_id: int | None,
    category_id: int | None,
    token: str,
    holder: str,
    address_cap: AddressCap | None = None,
    admitted: bool = False,
) -> HoldResult:
    """Pick and hold the best ``count`` seats in one step (best.lua): no retries."""
    best: dict[str, int] = {"count": count}
    if section_id is not None:
        best["section"] = section_id
    if category_id is not None:
        best["category"] = category_id
    cap = address_cap.args() if address_cap else {}
    result = _run("hold", event_id, best=best, token=token, holder=holder, admitted=admitted, **cap)
    return HoldResult(result["seq"], result["expires"], result["seats"])


def inventory_extend(*, event_id: int, token: str, holder: str, admitted: bool = False) -> int:
    """Returns the hold's new expiry (ms)."""
    return _run("extend", event_id, token=token, holder=holder, admitted=admitted)["expires"]


def inventory_release(
    *, event_id: int, token: str, holder: str, seats: list[str], admitted: bool = False
) -> dict:
    return _run("release", event_id, token=token, holder=holder, seats=seats, admitted=admitted)


def inventory_reserve(
    *, event_id: int, token: str, holder: str, reservation_id: str, admitted: bool = False
) -> dict:
    return _run(
        "reserve",
        event_id,
        token=token,
        holder=holder,
        reservation_id=reservation_id,
        admitted=admitted,
    )


def inventory_expire(*, event_id: int) -> int:
    """End the event's expired holds; returns how many."""
    return _run("expire", event_id, limit=EXPIRE_BATCH)["ended"]


def inventory_block(*, event_id: int, seats: list[str]) -> dict:
    return _run("block", event_id, seats=seats)


def inventory_unblock(*, event_id: int, seats: list[str]) -> dict:
    return _run("unblock", event_id, seats=seats)


def inventory_cancel(*, event_id: int, reservation_id: str) -> dict:
    return _run("cancel", event_id, reservation_id=reservation_id)


@dataclass(frozen=True)
class Snapshot:
    seq: int
    status: str
    state: dict[str, str]  # seat → "h:<token>" | "r:<id>" | "b"; free seats absent
    holds: dict[str, dict]  # token → {holder, seats, created, expires}
    now_ms: int

    def seat_state(self, seat: str) -> tuple[str, str | None]:
        """("free"|"held"|"reserved"|"blocked", hold token or reservation id)."""
        value = self.state.get(seat)
        if value is None:
            return "free", None
        if value == "b":
            return "blocked", None
        kind, ref = value.split(":", 1)
        if kind == "r":
            return "reserved", ref
        hold = self.holds.get(ref)
        # An expired hold counts as free, as it does inside the scripts.
        if hold is None or hold["expires"] <= self.now_ms:
            return "free", None
        return "held", ref

    def taken(self) -> list[str]:
        return [seat for seat in self.state if self.seat_state(seat)[0] != "free"]


@dataclass(frozen=True)
class ReservationRecord:
    """A reservation as the write side keeps it (keys.py, ``reservations``)."""

    holder: str
    seats: list[str]
    status: str  # "reserved" | "cancelled"


@dataclass(frozen=True)
class FullSnapshot(Snapshot):
    """A Snapshot with every reservation and every seat's price, read in the same atomic
    step: everything the projections are derived from, at ``seq``."""

    reservations: dict[str, ReservationRecord]  # reservation id → record
    prices_cents: dict[str, int]  # seat key → price loaded when the sale opened


def inventory_snapshot(*, event_id: int) -> Snapshot:
    """Every non-free seat and every hold, consistent with one seq."""
    now = clock_ms()
    result = _run("snapshot", event_id, now=now)
    return Snapshot(result["seq"], result["status"], *_state_and_holds(result), now)


def inventory_snapshot_full(*, event_id: int) -> FullSnapshot:
    """inventory_snapshot plus every reservation and seat price, consistent with one seq
    (for repairing the projections; a seat map needs none of it)."""
    now = clock_ms()
    result = _run("snapshot", event_id, now=now, records=True)
    reservations = {}
    for reservation_id, raw in _pairs(result["reservations"]):
        record = json.loads(raw)
        reservations[reservation_id] = ReservationRecord(
            record["holder"], list(record["seats"]), record["status"]
        )
    prices = {seat: int(cents) for seat, cents in _pairs(result["prices"])}
    state, holds = _state_and_holds(result)
    return FullSnapshot(result["seq"], result["status"], state, holds, now, reservations, prices)


def _pairs(flat: list | dict) -> list[tuple[str, str]]:
    """HGETALL's flat reply as pairs. Lua's cjson writes an empty list as {}."""
    items = flat or []
    return list(zip(items[::2], items[1::2], strict=True))


def _state_and_holds(result: dict) -> tuple[dict[str, str], dict[str, dict]]:
    state = dict(_pairs(result["state"]))
    holds = {token: json.loads(raw) for token, raw in _pairs(result["holds"])}
    return state, holds


def inventory_index_check(*, event_id: int, limit: int = 50) -> list[str]:
    """Every difference between the row index and the seats' states; [] when none."""
    return _run("index_check", event_id, limit=limit)["problems"] or []  # {} when empty


def inventory_event_ids() -> list[int]:
    """Events whose inventory is in Redis (for the sweep and the relay)."""
    return sorted(int(e) for e in redis_client_get().smembers(events_index_key()))
