"""The gateway's Channels consumer: the event WebSocket (the Kafka bridge is bridge.py).

``EventSocketConsumer`` serves ``/ws/events/<event_id>/`` (docs/architecture.md, Gateway):
a snapshot on connect and on ``resync``, then the event's frames as the bridge published
them. Zero business logic: the snapshot is built by selectors (snapshots.py), frames are
written as the text that was published.

Close codes (a close before the accept would reach the browser as a bare HTTP 403, so the
socket is accepted first and then closed with the code):

- 4404: no such event, or a draft one;
- 4409: the event is listed but its seats are not in the live inventory (sale not open);
- 4400: a message that is not a JSON ``{"type": "resync" | "ping"}`` of at most 4 KB;
- 4429: more than ``FLOOD_MAX_MESSAGES`` client messages within ``FLOOD_WINDOW_S``.

A buyer who opens the map of an event whose waiting room is on, without a valid pass, is
not sent the seats: their socket gets ``room`` frames instead (their place first, then the
room's figures from the ticker, docs/api.md, Waiting room) until they are admitted, take
their pass and open the map again.

Frames come from this process's fan-out (fanout.py), not through the channel layer: the
consumer has none (``channel_layer_alias``), so a socket costs no channel, no receive loop
and no per-message hop to the sync thread. Slow clients: what daphne has written to a
socket that does not read is buffered by its transport, bounded by the ping timeout;
frames waiting for a snapshot are bounded by ``MAX_WAITING_FRAMES``.
"""

import asyncio
import json
import logging
import time
from collections import deque
from types import SimpleNamespace

from autobahn.exception import Disconnected
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core import metrics
from apps.core.http import buyer_id_peek
from apps.gateway.fanout import fanout_get
from apps.gateway.snapshots import Missing, snapshot_get
from apps.waitingroom.selectors import (
    room_frame_drawn,
    room_frame_place_pending,
    room_socket_frame,
)
from apps.waitingroom.store import room_channel

log = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_FLOOD = 4429

# A client only ever sends {"type": "resync"} or {"type": "ping"}: a few dozen bytes.
MAX_CLIENT_MESSAGE = 4 * 1024
# Each resync costs a full seat-map read; a well-behaved client pings every ~30 s and
# resyncs only after a gap, so 20 messages in 10 s is far above normal and bounds the cost
# of a misbehaving one to 2 snapshots per second.
FLOOD_MAX_MESSAGES = 20
FLOOD_WINDOW_S = 10.0


# Frames that arrive while a snapshot is being built wait for it; past this many the
# newest are dropped (the client sees a seq gap and resyncs, as after any loss).
MAX_WAITING_FRAMES = 200


class EventSocketConsumer(AsyncWebsocketConsumer):
    """One browser watching one event's seat map."""

    # No channel layer for these sockets (an alias that is not configured): frames come
    # from the process's fan-out.
    channel_layer_alias = "live-map-uses-no-channel-layer"

    async def connect(self) -> None:
        self.event_id: int = self.scope["url_route"]["kwargs"]["event_id"]
        # Read the same way the seat map API does (no session is created by a read), so a
        # buyer's own holds are "mine" here exactly as over HTTP. No I/O: the middleware
        # has resolved the user, and the session key is the cookie's.
        user, session = self.scope.get("user"), self.scope.get("session")
        self.buyer = None
        if user is not None and session is not None:
            self.buyer = buyer_id_peek(SimpleNamespace(user=user, session=session))  # type: ignore[arg-type]
        self.joined = False
        self.closing = False
        self.room: str | None = None  # the waiting room's channel, while the buyer waits
        self.waiting: list[str] | None = []  # frames held back until the snapshot is out
        self.received: deque[float] = deque()
        await self.accept()
        metrics.SOCKETS.inc()
        self.counted = True
        self.fanout = fanout_get()
        # Off the sync thread (daphne's, which every consumer shares): a connect storm must
        # not queue behind it.
        room_frame = await asyncio.to_thread(
            room_socket_frame,
            event_id=self.event_id,
            buyer=self.buyer,
            cookies=self.scope.get("cookies", {}),
        )
        if room_frame is not None:
            await self.room_wait(room_frame)
            return
        await self.fanout.join(self.event_id, self)
        self.joined = True
        await self.snapshot_send()

    async def room_wait(self, first_frame: str) -> None:
        """Join the room's channel, then send the buyer's place."""
        self.room = room_channel(self.event_id)
        self.room_ticket_pending = room_frame_place_pending(first_frame)
        self.room_asking = False
        await self.fanout.join(self.event_id, self, self.room)
        self.joined = True
        self.waiting = None
        await self.send(text_data=first_frame)

    async def room_place_send(self) -> None:
        """The buyer's own ``room`` frame, with their place (after the draw, or on resync);
        if the room has gone off meanwhile, it says so."""
        self.room_asking = True
        try:
            frame = await asyncio.to_thread(
                room_socket_frame,
                event_id=self.event_id,
                buyer=self.buyer,
                cookies=self.scope.get("cookies", {}),
                waiting=True,
            )
            if self.closing or frame is None:
                return
            self.room_ticket_pending = room_frame_place_pending(frame)
            await self.send(text_data=frame)
        except Disconnected:
            pass  # the client left meanwhile; disconnect() follows
        except Exception:  # Redis away: the next frame or a resync asks again
            log.exception("waiting room: the buyer's place could not be read")
        finally:
            self.room_asking = False

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            metrics.SOCKETS.dec()
        await self._leave()

    async def _leave(self) -> None:
        if self.joined:
            self.joined = False
            await self.fanout.leave(self.event_id, self, self.room)

    async def snapshot_send(self) -> None:
        """A snapshot from a build that started after now, then the frames held back."""
        if self.waiting is None:
            self.waiting = []
        try:
            snapshot = await snapshot_get(self.event_id, joined_at=time.monotonic())
        except Missing as missing:
            await self.close_with(missing.code)
            return
        if self.closing:
            return
        await self.send(text_data=snapshot.text_for(self.buyer))
        metrics.FRAMES_SENT.inc()
        waiting, self.waiting = self.waiting, None
        for text in waiting:
            await self.send(text_data=text)

    async def close_with(self, code: int) -> None:
        self.closing = True
        await self._leave()
        await self.close(code=code)

    # --- from the fan-out ----------------------------------------------------------------

    async def frame_send(self, text: str) -> None:
        """A frame of this event, written as published, or held back for the snapshot."""
        if self.closing:
            return
        if self.room is not None:
            # Early arrivals learn their ticket when the start's draw made it.
            if self.room_ticket_pending and not self.room_asking and room_frame_drawn(text):
                # Not awaited: the fan-out writes this frame to every socket of the process
                # in turn, and thousands of early arrivals ask at the draw. (The task is
                # kept on the socket: the loop holds only a weak reference to it.)
                self.room_asking = True
                self.room_asked = asyncio.create_task(self.room_place_send())
                return
            await self.send(text_data=text)
            return
        if self.waiting is not None:
            if len(self.waiting) < MAX_WAITING_FRAMES:
                self.waiting.append(text)
            else:
                metrics.FRAMES_DROPPED.inc()
            return
        await self.send(text_data=text)

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
            await self.send(text_data='{"type":"pong"}')
        elif kind == "resync" and self.room is not None:
            await self.room_place_send()
        elif kind == "resync":
            metrics.RESYNCS.inc()
            await self.snapshot_send()
        else:
            await self.close_with(CLOSE_BAD_REQUEST)

    def _flooding(self) -> bool:
        now = time.monotonic()
        self.received.append(now)
        while self.received and self.received[0] <= now - FLOOD_WINDOW_S:
            self.received.popleft()
        return len(self.received) > FLOOD_MAX_MESSAGES
