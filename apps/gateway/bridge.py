"""The ``gateway`` Kafka worker: seat and stats envelopes → one live frame per event.

Zero business logic and no database: per polled batch, the envelopes of each event become
one frame ``{"type": "changes", "event_id", "items": [...]}``, PUBLISHed to the event's live
channel, where each web process with sockets of the event writes it to all of them
(fanout.py; docs/architecture.md, Gateway). An item is what a map applies: the envelope's
type, seq and the data it draws from (``live_item``); of the stats, only the newest in the
frame (clients keep only the newest anyway). Every socket receives every byte of every
frame, so bytes left out are saved thousands of times over.

After a busy batch the bridge waits a coalescing window before it polls again, so under
load a frame carries everything of one event within that window, and an idle event's
first change goes out at once. The window grows with the event's audience
(``coalesce_window_s``): each process spends at most about ``LIVE_WRITES_PER_S`` socket
writes a second on an event, whatever its number of sockets.

Unlike the projections, the bridge is a plain KafkaWorker (apps/core/workers.py), with no
transaction and no ProjectionCursor rows: a client drops every item whose ``seq`` is not
above what it has, so a redelivery after a crash or rebalance is harmless, and exactly-once
would cost a transaction per batch for nothing. The worker's loop commits the offsets only
after ``batch_process`` published the frames, so a crash redelivers rather than loses.
"""

import json
import logging
import time
from typing import Any

from django.conf import settings
from kafka.consumer.fetcher import ConsumerRecord
from redis.cluster import RedisCluster

from apps.core.envelopes import Envelope
from apps.core.redis import redis_client_get
from apps.core.workers import BatchResult, KafkaWorker, worker_register
from apps.gateway.fanout import live_channel, live_sockets_key

log = logging.getLogger(__name__)


def coalesce_window_s(sockets_per_process: int) -> float:
    """How long an event's changes gather into one frame, given the most sockets of the
    event that one web process has: one frame costs that process a write per socket."""
    window_ms = sockets_per_process * 1000 / settings.LIVE_WRITES_PER_S
    return min(max(window_ms, settings.LIVE_COALESCE_MS), settings.LIVE_COALESCE_MAX_MS) / 1000


LIVE_FETCH_WAIT_MS = 50
# The processes report their socket counts every second (fanout.py): read them as often.
AUDIENCE_TTL_S = 1.0


# What a seat map reads of a seat event's data: its seats, and the hold token (a hold of
# the buyer's own shows as theirs).
SEAT_DATA_KEYS = ("seats", "hold_token")


def live_item(envelope: Envelope) -> dict:
    data = envelope.data
    if envelope.type.startswith("seat."):
        data = {key: data[key] for key in SEAT_DATA_KEYS if key in data}
    return {"type": envelope.type, "seq": envelope.seq, "data": data}


def live_frame(event_id: int, envelopes: list[Envelope]) -> str:
    """One frame of an event's changes, in log order, with only the newest stats."""
    stats = [e for e in envelopes if e.type == "stats.updated"]
    newest = max(stats, key=lambda e: e.seq) if stats else None
    items = [live_item(e) for e in envelopes if e.type != "stats.updated" or e is newest]
    frame = {"type": "changes", "event_id": event_id, "items": items}
    return json.dumps(frame, separators=(",", ":"))


@worker_register
class GatewayBridge(KafkaWorker):
    name = "gateway"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS", "KAFKA_TOPIC_STATS_EVENTS")
    # Latency matters more than batching here: a short poll lets a stop be noticed quickly,
    # and poll() returns as soon as records arrive anyway.
    poll_timeout_ms = 250

    # A fetch the broker holds open waits up to this long for data; the embedded broker
    # answers it only then, not when data arrives, which put the hold → frame p99 at 214 ms
    # with the client's 500 ms default, 64 ms with this (docs, Gateway). Idle, it costs 20
    # empty fetches a second.
    kafka_defaults = {"fetch_max_wait_ms": LIVE_FETCH_WAIT_MS}

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        super().__init__(group_id=group_id, **kafka_config)
        self._redis = redis_client_get()
        self._audiences: dict[int, tuple[float, int]] = {}  # event → (read at, sockets)

    def batch_process(self, records: list[ConsumerRecord]) -> BatchResult:
        """Publish one polled batch as one frame per event, in log order (see module)."""
        result = BatchResult()
        by_event: dict[int, list[Envelope]] = {}
        for message in self.records_decode(records):
            if message.envelope is None:
                # The projections dead-letter it; the gateway only has nothing to show.
                result.dead_letters += 1
                continue
            by_event.setdefault(message.envelope.event_id, []).append(message.envelope)
            result.applied += 1
        if by_event:
            frames = {live_channel(e): live_frame(e, items) for e, items in by_event.items()}
            if isinstance(self._redis, RedisCluster):
                # redis-py's cluster pipeline refuses PUBLISH; a classic PUBLISH reaches the
                # subscribers of every node (docs/architecture.md, "Redis Cluster").
                for channel, frame in frames.items():
                    self._redis.publish(channel, frame)
            else:
                with self._redis.pipeline(transaction=False) as pipe:
                    for channel, frame in frames.items():
                        pipe.publish(channel, frame)
                    pipe.execute()
            # Let the next changes gather: at most one frame per event per window (the
            # widest window of the events in this batch: an on-sale is usually one event).
            audience = max(self._audience(event_id) for event_id in by_event)
            time.sleep(coalesce_window_s(audience))
        return result

    def _audience(self, event_id: int) -> int:
        """The most sockets of the event that one web process has, read at most once a
        second."""
        now = time.monotonic()
        read_at, sockets = self._audiences.get(event_id, (0.0, 0))
        if now - read_at >= AUDIENCE_TTL_S:
            counts = self._redis.hvals(live_sockets_key(event_id))
            sockets = max((int(count) for count in counts), default=0)
            self._audiences[event_id] = (now, sockets)
        return sockets
