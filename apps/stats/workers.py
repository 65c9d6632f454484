"""The ``stats`` Kafka worker: seat events → EventStats/SectionStats, then stats.updated
(docs/architecture.md, Stats).

Thin: apply the batch, and publish the coalesced stats.updated between polls.
"""

from typing import Any

from django.db import transaction
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from apps.core.envelopes import Envelope
from apps.core.projections import ProjectionWorker, Repair
from apps.core.workers import BatchResult, worker_register
from apps.reservations.outbox import outbox_envelopes
from apps.stats.cache import stats_gauges_forget
from apps.stats.services import StatsPublisher, stats_apply, stats_repair


@worker_register
class StatsWorker(ProjectionWorker):
    # Batches and fetches sized for catching up a backlog: ProjectionWorker's defaults.
    name = "stats"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)
    # An idle poll is when a burst's last, coalesced stats.updated goes out: it ends at most
    # this late after the publish window does.
    poll_timeout_ms = 250

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        super().__init__(group_id=group_id, **kafka_config)
        self.publisher = StatsPublisher()
        self.partitions: dict[int, TopicPartition] = {}  # where each event's envelopes come from

    def batch_process(self, records: list[ConsumerRecord]) -> BatchResult:
        for record in records:
            if record.key and record.key.isdigit():  # the event id (apps/core/kafka.py)
                self.partitions[int(record.key)] = TopicPartition(record.topic, record.partition)
        return super().batch_process(records)

    def batch_apply(self, envelopes: list[Envelope]) -> None:
        changed = stats_apply(envelopes=envelopes)
        if changed:
            # Marked only once the batch's transaction commits; a rolled-back attempt marks
            # nothing (its savepoint drops this callback).
            transaction.on_commit(lambda: self.publisher.mark(changed))

    def partitions_lost(self, partitions: set[TopicPartition]) -> None:
        # The events of those partitions are another member's now, gauges included: with two
        # stats workers, a dashboard adding them up would count an event twice.
        gone = {e for e, tp in self.partitions.items() if tp in partitions}
        stats_gauges_forget(gone)  # events never reported: nothing to drop
        for event_id in gone:
            del self.partitions[event_id]

    def envelopes_missing(
        self, event_id: int, *, after_seq: int, before_seq: int
    ) -> list[Envelope]:
        return outbox_envelopes(event_id=event_id, after_seq=after_seq, before_seq=before_seq)

    def event_repair(self, event_id: int) -> Repair:
        repair = stats_repair(event_id=event_id)
        if repair.changes:
            # As after a batch: stats.updated once the repair's transaction commits.
            transaction.on_commit(lambda: self.publisher.mark({event_id}))
        return repair

    def after_poll(self) -> None:
        self.publisher.flush()

    def close(self) -> None:
        # The last coalesced stats.updated of every event still marked goes out now.
        try:
            self.publisher.flush(force=True)
            self.publisher.close()
        finally:
            super().close()
