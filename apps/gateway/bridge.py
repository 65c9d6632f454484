"""The ``gateway`` Kafka consumer: seat and stats envelopes → the event's channel-layer group.

Zero business logic and no database: each envelope's JSON text is handed, unchanged, to the
group of its event (``event-<id>``), where every WebSocket of that event forwards it.

Unlike the projectors, the bridge keeps no ProjectionCursor rows: a WebSocket client drops
every message whose ``seq`` is not above what it has (docs/architecture.md, Gateway), so a
redelivery after a crash or rebalance is harmless, and exactly-once would cost a transaction
per batch for nothing. ``batch_process`` is therefore overridden to skip the base's transaction and
cursors; offsets are still committed only after the batch was handed to the channel layer,
so a crash redelivers rather than loses.
"""

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer

from apps.core.consumers import BatchResult, Envelope, KafkaBatchConsumer, consumer_register

log = logging.getLogger(__name__)

# The Channels message type a WebSocket consumer handles as ``envelope_forward``.
FORWARD_TYPE = "envelope.forward"


def event_group_name(event_id: int) -> str:
    """The channel-layer group of one event's WebSockets (ASCII alnum/hyphen, < 100 chars)."""
    return f"event-{int(event_id)}"


@consumer_register
class GatewayBridge(KafkaBatchConsumer):
    name = "gateway"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS", "KAFKA_TOPIC_STATS_EVENTS")
    # Latency matters more than batching here: a short poll lets a stop be noticed quickly,
    # and poll() returns as soon as records arrive anyway.
    poll_timeout_ms = 250

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        super().__init__(group_id=group_id, **kafka_config)
        # One event loop for the consumer's lifetime (it runs in one thread): channels_redis
        # keeps its connection pools per loop, and async_to_sync would make a loop, and with
        # it new Redis connections, for every call.
        self._loop: asyncio.AbstractEventLoop | None = None

    def batch_process(self, records: list) -> BatchResult:
        """Forward one polled batch in log order; no transaction, no cursors (see module)."""
        result = BatchResult()
        texts: list[tuple[Envelope, str]] = []
        for record in records:
            message = self._decode(record)
            if message.envelope is None:
                # The projectors dead-letter it already; the gateway only has nothing to show.
                result.dead_letters += 1
                continue
            texts.append((message.envelope, record.value.decode("utf-8")))
        if texts:
            self._loop_get().run_until_complete(self._forward(texts))
        result.applied = len(texts)
        return result

    def consume_batch(self, messages: list[Envelope]) -> None:  # pragma: no cover
        raise NotImplementedError("the gateway forwards raw records in batch_process")

    async def _forward(self, texts: list[tuple[Envelope, str]]) -> None:
        layer = get_channel_layer()
        # One at a time: a group_send awaited before the next keeps every event's messages in
        # log order in each client's channel (both channels_redis layers preserve it).
        for envelope, text in texts:
            await layer.group_send(
                event_group_name(envelope.event_id), {"type": FORWARD_TYPE, "text": text}
            )

    def _loop_get(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    def before_stop(self) -> None:
        if self._loop is not None:
            # channels_redis wraps loop.close() to close this loop's Redis connections.
            self._loop.close()
            self._loop = None
