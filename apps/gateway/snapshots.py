"""Snapshots for sockets: built once per event and instant, shared as text (single flight).

A connect storm asks for the same event's snapshot thousands of times a second. One build
serves every socket that joined the event's frames before the build started (a socket
that joined later could miss a change made between the build's read and its join, so it
waits for the next build). Builds run on a small pool of their own, never on the thread
that Channels' database calls share: handshakes (the session and user lookups) never
queue behind them (docs/architecture.md, Gateway).

The shared text holds no buyer's identity: each socket adds its buyer's own held seats as
``mine`` in front of it.
"""

import asyncio
import json
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import close_old_connections

from apps.reservations.errors import SaleNotOpen
from apps.reservations.selectors import event_public_get
from apps.seatstate.selectors import seat_map_get
from apps.stats.selectors import event_stats_get

CLOSE_NOT_FOUND = 4404
CLOSE_SALE_NOT_OPEN = 4409

# Two threads: one build may wait on Redis while the other encodes.
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapshot")


class Missing(Exception):
    """No snapshot to give: the socket closes with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class SharedSnapshot:
    seq: int
    tail: str  # the snapshot's JSON after its opening brace: '"event_id": …}'
    held_by: dict[str, list[str]]  # buyer → seats of their live holds

    def text_for(self, buyer: str | None) -> str:
        mine = self.held_by.get(buyer, []) if buyer is not None else []
        return '{"type":"snapshot","mine":' + json.dumps(mine) + "," + self.tail


def _build(event_id: int) -> SharedSnapshot:
    try:
        if event_public_get(event_id=event_id) is None:
            raise Missing(CLOSE_NOT_FOUND)
        try:
            seat_map = seat_map_get(event_id=event_id, buyer=None)
        except SaleNotOpen:
            raise Missing(CLOSE_SALE_NOT_OPEN) from None
        stats = event_stats_get(event_id=event_id)
        if stats is None:  # turned into a draft meanwhile
            raise Missing(CLOSE_NOT_FOUND)
        body = {
            "event_id": event_id,
            "seq": seat_map.seq,
            "sale_status": seat_map.sale_status,
            "seats": seat_map.sections,
            "stats": stats,
        }
        encoded = json.dumps(body, separators=(",", ":"))
        return SharedSnapshot(seat_map.seq, encoded[1:], seat_map.held_by)
    finally:
        # This pool's threads outlive requests: give back what Django opened on them.
        close_old_connections()


@dataclass
class _Event:
    """An event's builds: the one running, and the one the sockets that joined while it
    ran wait for (it starts when the running one ends, and serves them all at once)."""

    running: asyncio.Future | None = None
    started: float = 0.0
    next: asyncio.Future | None = None


class SnapshotFlights:
    """One per event loop: see ``snapshot_get``."""

    def __init__(self) -> None:
        self._events: dict[int, _Event] = {}

    async def get(self, event_id: int, *, joined_at: float) -> SharedSnapshot:
        """The event's snapshot from a build that started at or after ``joined_at``."""
        event = self._events.setdefault(event_id, _Event())
        if event.running is None:
            self._start(event_id, event)
        if event.started >= joined_at:
            result = event.running
        else:
            event.next = event.next or asyncio.get_running_loop().create_future()
            result = event.next
        # shield: a socket that goes away must not cancel what the others wait for.
        return await asyncio.shield(result)  # type: ignore[arg-type]

    def _start(self, event_id: int, event: _Event) -> None:
        loop = asyncio.get_running_loop()
        event.started = time.monotonic()
        event.running = loop.run_in_executor(_pool, _build, event_id)
        event.running.add_done_callback(lambda done: self._ended(event_id, event, done))

    def _ended(self, event_id: int, event: _Event, done: asyncio.Future) -> None:
        waiting, event.next, event.running = event.next, None, None
        if waiting is None:
            del self._events[event_id]
            return
        self._start(event_id, event)
        assert event.running is not None  # _start set it
        event.running.add_done_callback(lambda build: _pass_on(build, waiting))


def _pass_on(build: asyncio.Future, waiting: asyncio.Future) -> None:
    if waiting.done():
        return
    if build.exception() is not None:
        waiting.set_exception(build.exception())  # type: ignore[arg-type]
    else:
        waiting.set_result(build.result())


_flights: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SnapshotFlights]" = (
    weakref.WeakKeyDictionary()
)


async def snapshot_get(event_id: int, *, joined_at: float) -> SharedSnapshot:
    loop = asyncio.get_running_loop()
    flights = _flights.get(loop)
    if flights is None:
        flights = _flights[loop] = SnapshotFlights()
    return await flights.get(event_id, joined_at=joined_at)
