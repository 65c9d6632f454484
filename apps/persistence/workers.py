"""The ``persistence`` Kafka worker: seat events → Reservation rows (docs/architecture.md,
Persistence). Thin: the service writes the batch."""

from apps.core.envelopes import Envelope
from apps.core.projections import ProjectionWorker, Repair
from apps.core.workers import worker_register
from apps.persistence.services import reservations_record, reservations_repair
from apps.reservations.outbox import outbox_envelopes


@worker_register
class PersistenceWorker(ProjectionWorker):
    # Batches and fetches sized for catching up a backlog: ProjectionWorker's defaults.
    name = "persistence"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)

    def batch_apply(self, envelopes: list[Envelope]) -> None:
        # The whole batch at once, set-based; holds, expiries and blocks are not reservations
        # and are skipped by the service (the cursor still moves past them).
        reservations_record(envelopes=envelopes)

    def envelopes_missing(
        self, event_id: int, *, after_seq: int, before_seq: int
    ) -> list[Envelope]:
        return outbox_envelopes(event_id=event_id, after_seq=after_seq, before_seq=before_seq)

    def event_repair(self, event_id: int) -> Repair:
        return reservations_repair(event_id=event_id)
