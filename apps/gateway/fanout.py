"""Live changes to this process's sockets: one subscription per event, one frame for all.

The bridge publishes one frame per event and coalescing window to the event's live
channel (bridge.py). Each web process that has sockets of an event subscribes to that
channel once and writes each frame, as the same text, to every local socket of the event:
no per-socket queue in Redis, no message through a consumer's dispatch, so no hop to the
sync thread per message (docs/architecture.md, Gateway).

A socket joins before its snapshot is read: every frame published after that reaches it,
and what came before is in the snapshot. Frames that arrive while its snapshot is being
built wait in the socket (consumers.py) and are sent after it; the client drops what the
snapshot already has.
"""

import asyncio
import logging
import os
import platform
import weakref
from typing import Protocol

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from autobahn.exception import Disconnected
from django.conf import settings

from apps.core import metrics

log = logging.getLogger(__name__)


def live_channel(event_id: int) -> str:
    """The event's Pub/Sub channel (its hash tag too, for sharded Pub/Sub on a cluster)."""
    return f"{settings.SEATS_REDIS_PREFIX}:{{ev:{int(event_id)}}}:live"


def live_sockets_key(event_id: int) -> str:
    """Hash: web process → how many sockets of the event it has (for the bridge's window)."""
    return f"{settings.SEATS_REDIS_PREFIX}:{{ev:{int(event_id)}}}:live-sockets"


# How often a process reports its socket counts, and how long a report lives: a process
# that dies stops counting within LIVE_REPORT_TTL_S.
LIVE_REPORT_S = 1.0
LIVE_REPORT_TTL_S = 5


class FrameSink(Protocol):
    async def frame_send(self, text: str) -> None: ...


class Fanout:
    """One per event loop (a web process runs one): see ``fanout_get``."""

    def __init__(self) -> None:
        self._redis: aioredis.Redis | aiocluster.RedisCluster
        if settings.REDIS_CLUSTER:
            # The reports go to their keys' nodes; the subscription is classic Pub/Sub on the
            # node REDIS_URL names, which every node's PUBLISH reaches (docs/architecture.md,
            # "Redis Cluster").
            self._redis = aiocluster.RedisCluster.from_url(settings.REDIS_URL)
            self._pubsub = aioredis.Redis.from_url(settings.REDIS_URL).pubsub()
        else:
            self._redis = aioredis.Redis.from_url(settings.REDIS_URL)
            self._pubsub = self._redis.pubsub()
        self._sockets: dict[str, set[FrameSink]] = {}
        self._subscribed: dict[str, asyncio.Event] = {}
        self._reader: asyncio.Task | None = None
        self._events: dict[str, int] = {}  # channel → event id, for the reports
        self._reporter: asyncio.Task | None = None
        self._name = f"{platform.node()}:{os.getpid()}:{id(self)}"

    async def join(self, event_id: int, socket: FrameSink, channel: str | None = None) -> None:
        """From now on ``socket`` gets every frame of the event (or of ``channel``, such as
        its waiting room's); returns once Redis has confirmed the subscription, so a
        snapshot read after this misses nothing."""
        channel = channel or live_channel(event_id)
        sockets = self._sockets.setdefault(channel, set())
        sockets.add(socket)
        if channel == live_channel(event_id):  # the bridge's audience: map sockets only
            self._events[channel] = event_id
        if self._reporter is None or self._reporter.done():
            self._reporter = asyncio.create_task(self._report(), name="live-report")
        if channel not in self._subscribed:
            self._subscribed[channel] = asyncio.Event()
            await self._pubsub.subscribe(channel)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="live-fanout")
        await self._subscribed[channel].wait()

    async def leave(self, event_id: int, socket: FrameSink, channel: str | None = None) -> None:
        channel = channel or live_channel(event_id)
        sockets = self._sockets.get(channel)
        if sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self._sockets[channel]
            del self._subscribed[channel]
            self._events.pop(channel, None)
            await self._pubsub.unsubscribe(channel)

    async def _report(self) -> None:
        """Every second, this process's socket count per event, where the bridge reads it
        to size its coalescing window (bridge.py). Ends when the process has no sockets."""
        reported: set[int] = set()
        while True:
            counts = {
                self._events[c]: len(s) for c, s in self._sockets.items() if c in self._events
            }
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for event_id, count in counts.items():
                        pipe.hset(live_sockets_key(event_id), self._name, count)
                        pipe.expire(live_sockets_key(event_id), LIVE_REPORT_TTL_S)
                    for event_id in reported - counts.keys():
                        pipe.hdel(live_sockets_key(event_id), self._name)
                    await pipe.execute()
                reported = set(counts)
            except Exception:  # a missed report only makes the window stale for a while
                log.exception("live fan-out: reporting socket counts failed")
            if not counts:
                return
            await asyncio.sleep(LIVE_REPORT_S)

    async def _read(self) -> None:
        while self._subscribed:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception:  # the reader must outlive any error: every socket needs it
                # redis-py reconnects and subscribes again on the next read; frames
                # published meanwhile are lost, and clients heal the gap by resyncing.
                log.exception("live fan-out: reading frames failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"].decode()
            if message["type"] == "subscribe" and channel in self._subscribed:
                self._subscribed[channel].set()
            elif message["type"] == "message":
                await self._deliver(channel, message["data"].decode())

    async def _deliver(self, channel: str, text: str) -> None:
        sockets = list(self._sockets.get(channel, ()))
        for socket in sockets:
            try:
                await socket.frame_send(text)
            except Disconnected:
                # The client went away and daphne knows before the consumer does: its
                # disconnect() follows and leaves the fan-out. Not an error worth a
                # traceback (an on-sale's dropped sockets would flood the log).
                continue
            except Exception:  # one broken socket must not stop the others' frames
                log.exception("live fan-out: a socket failed to take a frame")
        # Once per frame, not per socket: thousands of sockets take each frame.
        metrics.FRAMES_SENT.inc(len(sockets))


# Keyed by loop, weakly: tests run a loop per test; a server runs one for its lifetime.
_fanouts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout]" = (
    weakref.WeakKeyDictionary()
)


def fanout_get() -> Fanout:
    """This event loop's fan-out."""
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout()
    return fanout
