"""The ``persistence`` Kafka consumer: seat events → Reservation rows. Thin: call the service."""

from typing import Any

from apps.core.consumers import Envelope, KafkaBatchConsumer, consumer_register
from apps.persistence.services import reservations_record

# Catching up a backlog (an on-sale, a worker restart), measured with bench/pipeline.py:
# a batch costs a few statements whatever its size, so batches are large; fetches of up to
# 4 MiB a partition (~14,000 envelopes, the client's default is 1 MiB) make a poll rarely
# wait for the broker; and the broker may hold a fetch 50 ms, not the client's 500: the
# embedded one (Tansu) holds every fetch to that deadline, data waiting or not, which
# stalled a catch-up ~400 ms after each fetch. Idle, that costs 20 empty fetches a second.
MAX_BATCH = 5_000
FETCH_BYTES = 4 * 1024 * 1024
FETCH_WAIT_MS = 50


@consumer_register
class PersistenceConsumer(KafkaBatchConsumer):
    name = "persistence"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)
    max_batch = MAX_BATCH

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        kafka_config.setdefault("max_partition_fetch_bytes", FETCH_BYTES)
        kafka_config.setdefault("fetch_max_wait_ms", FETCH_WAIT_MS)
        super().__init__(group_id=group_id, **kafka_config)

    def consume_batch(self, messages: list[Envelope]) -> None:
        # The whole batch at once, set-based; holds, expiries and blocks are not reservations
        # and are skipped by the service (the cursor still moves past them).
        reservations_record(envelopes=messages)
