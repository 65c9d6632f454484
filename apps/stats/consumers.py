"""The ``stats`` Kafka consumer: seat events → EventStats/SectionStats, then stats.updated.

Thin: apply the batch, and publish the coalesced stats.updated between polls.
"""

from typing import Any

from django.db import transaction

from apps.core.consumers import Envelope, KafkaBatchConsumer, consumer_register
from apps.stats.services import StatsPublisher, stats_apply

# Catching up a backlog: the same batch and fetch settings as persistence, for the same
# reasons (apps/persistence/consumers.py).
MAX_BATCH = 5_000
FETCH_BYTES = 4 * 1024 * 1024
FETCH_WAIT_MS = 50


@consumer_register
class StatsConsumer(KafkaBatchConsumer):
    name = "stats"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)
    max_batch = MAX_BATCH
    # An idle poll is when a burst's last, coalesced stats.updated goes out: it ends at most
    # this late after the publish window does.
    poll_timeout_ms = 250

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        kafka_config.setdefault("max_partition_fetch_bytes", FETCH_BYTES)
        kafka_config.setdefault("fetch_max_wait_ms", FETCH_WAIT_MS)
        super().__init__(group_id=group_id, **kafka_config)
        self.publisher = StatsPublisher()

    def consume_batch(self, messages: list[Envelope]) -> None:
        changed = stats_apply(envelopes=messages)
        if changed:
            # Marked only once the batch's transaction commits; a rolled-back attempt marks
            # nothing (its savepoint drops this callback).
            transaction.on_commit(lambda: self.publisher.mark(changed))

    def after_poll(self) -> None:
        self.publisher.flush()

    def before_stop(self) -> None:
        self.publisher.flush(force=True)
        self.publisher.close()
