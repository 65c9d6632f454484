"""The gateway's consumers: the event WebSocket, and (imported from bridge.py) the Kafka bridge.

``EventSocketConsumer`` serves ``/ws/events/<event_id>/`` (docs/architecture.md, Gateway): a
snapshot on connect and on ``resync``, then every envelope of the event as the bridge hands
it to the event's group. Zero business logic: the snapshot is two selectors, the envelopes
are relayed as the text that was published.

Close codes (a close before the accept would reach the browser as a bare HTTP 403, so the
socket is accepted first and then closed with the code):

- 4404: no such event, or a draft one;
- 4409: the event is listed but its seats are not in the live inventory (sale not open);
- 4400: a message that is not a JSON ``{"type": "resync" | "ping"}`` of at most 4 KB;
- 4429: more than ``FLOOD_MAX_MESSAGES`` client messages within ``FLOOD_WINDOW_S``.

Slow clients: the bridge's ``group_send`` never waits for a client. With the "core" channel
layer each WebSocket's channel is a Redis list bounded by the layer's ``capacity``; when a
client's consumer falls that far behind, further messages to it are dropped (and the layer
logs it), and messages not picked up within ``expiry`` seconds are discarded. The client sees
a ``seq`` gap and asks for a ``resync``, which is the protocol's recovery for any loss.
"""

import json
import time
from collections import deque
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.http import buyer_id_peek
from apps.gateway.bridge import GatewayBridge, event_group_name
from apps.reservations.errors import SaleNotOpen
from apps.reservations.selectors import event_public_get
from apps.seatstate.selectors import seat_map_get
from apps.stats.selectors import event_stats_get

__all__ = ["EventSocketConsumer", "GatewayBridge"]

CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
CLOSE_SALE_NOT_OPEN = 4409
CLOSE_FLOOD = 4429

# A client only ever sends {"type": "resync"} or {"type": "ping"}: a few dozen bytes.
MAX_CLIENT_MESSAGE = 4 * 1024
# Each resync costs a full seat-map read; a well-behaved client pings every ~30 s and
# resyncs only after a gap, so 20 messages in 10 s is far above normal and bounds the cost
# of a misbehaving one to 2 snapshots per second.
FLOOD_MAX_MESSAGES = 20
FLOOD_WINDOW_S = 10.0


class _Missing(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _snapshot_build(*, event_id: int, user: Any, session: Any) -> dict:
    """The snapshot message, or _Missing with the close code. Runs in a worker thread."""
    if event_public_get(event_id=event_id) is None:
        raise _Missing(CLOSE_NOT_FOUND)
    # Read the same way the seat map API does (no session is created by a read), so a
    # buyer's own holds show as "m" here exactly as over HTTP.
    buyer = None
    if user is not None and session is not None:
        buyer = buyer_id_peek(SimpleNamespace(user=user, session=session))  # type: ignore[arg-type]
    try:
        seat_map = seat_map_get(event_id=event_id, buyer=buyer)
    except SaleNotOpen:
        raise _Missing(CLOSE_SALE_NOT_OPEN) from None
    stats = event_stats_get(event_id=event_id)
    if stats is None:  # turned into a draft meanwhile
        raise _Missing(CLOSE_NOT_FOUND)
    return {
        "type": "snapshot",
        "event_id": event_id,
        "seq": seat_map.seq,
        "sale_status": seat_map.sale_status,
        "seats": seat_map.sections,
        "stats": stats,
    }


class EventSocketConsumer(AsyncJsonWebsocketConsumer):
    """One browser watching one event's seat map."""

    async def connect(self) -> None:
        self.event_id: int = self.scope["url_route"]["kwargs"]["event_id"]
        self.group_name = event_group_name(self.event_id)
        self.joined = False
        self.closing = False
        self.received: deque[float] = deque()
        await self.accept()
        # Join before reading the snapshot: an envelope published in between is then both in
        # the snapshot and queued after it, and the client drops it by its seq. Joined after,
        # it would be lost. Queued group messages wait until connect() returns, so the
        # snapshot is always the first message.
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        self.joined = True
        await self.snapshot_send()

    async def disconnect(self, code: int) -> None:
        if self.joined:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
            self.joined = False

    async def snapshot_send(self) -> None:
        try:
            snapshot = await database_sync_to_async(_snapshot_build)(
                event_id=self.event_id,
                user=self.scope.get("user"),
                session=self.scope.get("session"),
            )
        except _Missing as missing:
            await self.close_with(missing.code)
            return
        await self.send_json(snapshot)

    async def close_with(self, code: int) -> None:
        self.closing = True
        if self.joined:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
            self.joined = False
        await self.close(code=code)

    # --- from the client ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return  # frames that were in flight when we closed
        if self._flooding():
            await self.close_with(CLOSE_FLOOD)
            return
        if (
            text_data is None
            or len(text_data) > MAX_CLIENT_MESSAGE  # cheap first: chars ≤ bytes
            or len(text_data.encode("utf-8")) > MAX_CLIENT_MESSAGE
        ):
            await self.close_with(CLOSE_BAD_REQUEST)
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.close_with(CLOSE_BAD_REQUEST)
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "resync":
            await self.snapshot_send()
        else:
            await self.close_with(CLOSE_BAD_REQUEST)

    def _flooding(self) -> bool:
        now = time.monotonic()
        self.received.append(now)
        while self.received and self.received[0] <= now - FLOOD_WINDOW_S:
            self.received.popleft()
        return len(self.received) > FLOOD_MAX_MESSAGES

    # --- from the bridge ----------------------------------------------------------------

    async def envelope_forward(self, message: dict) -> None:
        """An envelope of this event: sent as the text that was published, not re-encoded."""
        if not self.closing:
            await self.send(text_data=message["text"])
