"""The ``gateway`` Kafka consumer: seat and stats envelopes → one live frame per event.

Zero business logic and no database: per polled batch, the envelopes of each event are
joined, as the JSON text that was published, into one frame ``{"type": "changes",
"event_id", "items": [...]}`` and PUBLISHed to the event's live channel, where each web
process with sockets of the event writes it to all of them (fanout.py; docs/architecture.md,
Gateway). After a busy batch the bridge waits a coalescing window before it polls again,
so under load a frame carries everything of one event within that window, and an idle
event's first change goes out at once. The window grows with the event's audience
(``coalesce_window_s``): each process spends at most about ``LIVE_WRITES_PER_S`` socket
writes a second on an event, whatever its number of sockets.

Unlike the projectors, the bridge keeps no ProjectionCursor rows: a client drops every item
whose ``seq`` is not above what it has, so a redelivery after a crash or rebalance is
harmless, and exactly-once would cost a transaction per batch for nothing.
``batch_process`` is therefore overridden to skip the base's transaction and cursors;
offsets are still committed only after the frames were published, so a crash redelivers
rather than loses.
"""

import logging
import time
from typing import Any

from django.conf import settings

from apps.core.consumers import BatchResult, Envelope, KafkaBatchConsumer, consumer_register
from apps.core.redis import redis_client_get
from apps.gateway.fanout import live_channel, live_sockets_key

log = logging.getLogger(__name__)


def coalesce_window_s(sockets_per_process: int) -> float:
    """How long an event's changes gather into one frame, given the most sockets of the
    event that one web process has: one frame costs that process a write per socket."""
    window_ms = sockets_per_process * 1000 / settings.LIVE_WRITES_PER_S
    return min(max(window_ms, settings.LIVE_COALESCE_MS), settings.LIVE_COALESCE_MAX_MS) / 1000


# The processes report their socket counts every second (fanout.py): read them as often.
AUDIENCE_TTL_S = 1.0


def live_frame(event_id: int, texts: list[str]) -> str:
    """One frame of an event's changes; the items are the published texts, not re-encoded."""
    return f'{{"type":"changes","event_id":{int(event_id)},"items":[{",".join(texts)}]}}'


@consumer_register
class GatewayBridge(KafkaBatchConsumer):
    name = "gateway"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS", "KAFKA_TOPIC_STATS_EVENTS")
    # Latency matters more than batching here: a short poll lets a stop be noticed quickly,
    # and poll() returns as soon as records arrive anyway.
    poll_timeout_ms = 250

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        super().__init__(group_id=group_id, **kafka_config)
        self._redis = redis_client_get()
        self._audiences: dict[int, tuple[float, int]] = {}  # event → (read at, sockets)

    def batch_process(self, records: list) -> BatchResult:
        """Publish one polled batch as one frame per event, in log order (see module)."""
        result = BatchResult()
        by_event: dict[int, list[str]] = {}
        for record in records:
            message = self._decode(record)
            if message.envelope is None:
                # The projectors dead-letter it already; the gateway only has nothing to show.
                result.dead_letters += 1
                continue
            by_event.setdefault(message.envelope.event_id, []).append(record.value.decode())
            result.applied += 1
        if by_event:
            with self._redis.pipeline(transaction=False) as pipe:
                for event_id, texts in by_event.items():
                    pipe.publish(live_channel(event_id), live_frame(event_id, texts))
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

    def consume_batch(self, messages: list[Envelope]) -> None:  # pragma: no cover
        raise NotImplementedError("the gateway forwards raw records in batch_process")
