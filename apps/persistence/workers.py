"""The ``persistence`` Kafka worker: seat events → Reservation rows (docs/architecture.md,
Persistence). Thin: the service writes the batch."""

from apps.core.envelopes import Envelope
from apps.core.projections import ProjectionWorker
from apps.core.workers import worker_register
from apps.persistence.services import reservations_record


@worker_register
class PersistenceWorker(ProjectionWorker):
    # Batches and fetches sized for catching up a backlog: ProjectionWorker's defaults.
    name = "persistence"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)

    def batch_apply(self, envelopes: list[Envelope]) -> None:
        # The whole batch at once, set-based; holds, expiries and blocks are not reservations
        # and are skipped by the service (the cursor still moves past them).
        reservations_record(envelopes=envelopes)
