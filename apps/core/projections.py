"""Projection workers: Kafka workers that apply envelopes to Postgres tables exactly once
(docs/architecture.md, Consumers). Persistence and stats are projections.

Each polled batch:

1. every record is decoded into an :class:`~apps.core.envelopes.Envelope`; one that cannot
   be is a dead letter;
2. the batch is applied in ONE database transaction, together with the worker's
   :class:`~apps.core.models.ProjectionCursor` rows: an envelope whose ``seq`` is not above
   its event's cursor was applied already (delivery is at least once) and is skipped; one
   more than one above it is never applied past the hole: the missing envelopes are read
   from the write side's outbox (:meth:`ProjectionWorker.envelopes_missing`, kept there
   until every projection applied them) and applied first, and if they are not there the
   event's rows are repaired from the write side's state (:meth:`ProjectionWorker.event_repair`);
3. when applying the batch raises, that attempt is rolled back and the batch is applied again
   message by message, each in its own savepoint, so only the poison message is a dead letter;
4. dead letters go to ``<topic>.dlq`` (value = the original bytes, the reason in a header),
   before the transaction commits;
5. the transaction commits; the loop (apps/core/workers.py) commits the Kafka offsets only
   after that. A crash between the two redelivers the batch, and the cursors turn the replay
   into a no-op.

Subclasses implement :meth:`ProjectionWorker.batch_apply` and
:meth:`ProjectionWorker.event_repair`. docs/architecture.md, "Gaps and repair".
"""

import abc
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from apps.core import metrics
from apps.core.envelopes import Envelope
from apps.core.kafka import kafka_producer_create
from apps.core.logs import envelope_context
from apps.core.models import ProjectionCursor
from apps.core.workers import BatchResult, Decoded, KafkaWorker, error_text, workers_registered

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"

# Catching up a backlog (an on-sale, a worker restart), measured with bench/pipeline.py:
# a projection's batch costs a few statements whatever its size, so batches are large;
# fetches of up to 4 MiB a partition (~14,000 envelopes, the client's default is 1 MiB) make
# a poll rarely wait for the broker; and the broker may hold a fetch 50 ms, not the client's
# 500: the embedded one (Tansu) holds every fetch to that deadline, data waiting or not,
# which stalled a catch-up ~400 ms after each fetch. Idle, that costs 20 empty fetches a
# second.
CATCH_UP_MAX_BATCH = 5_000
CATCH_UP_FETCH = {"max_partition_fetch_bytes": 4 * 1024 * 1024, "fetch_max_wait_ms": 50}
# Keeping up with a steady flow (an on-sale's commands arrive a few at a time): each fetch
# held 50 ms made a batch of a few envelopes, 20 a second, and a batch costs its
# transaction, cursor lock, offset commit and (stats) hot-copy refresh whatever its size,
# ~100 times an envelope's own cost in a catch-up. Letting envelopes gather for this long
# once a batch has read to the end of the log makes at most 5 batches a second; the
# projections are at most that much later (docs/architecture.md, Consumers). The live map
# does not wait on them, and a worker catching up never lingers.
STEADY_LINGER_MS = 200


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def projections_applied(event_ids: list[int]) -> dict[int, int]:
    """For each event every projection worker has a cursor of, the lowest of them: every
    envelope up to that seq is applied everywhere (the outbox may forget it)."""
    names = sorted(
        name for name, cls in workers_registered().items() if issubclass(cls, ProjectionWorker)
    )
    cursors: dict[int, list[int]] = {}
    rows = ProjectionCursor.objects.filter(event_id__in=event_ids, consumer__in=names)
    for event_id, last_seq in rows.values_list("event_id", "last_seq"):
        cursors.setdefault(event_id, []).append(last_seq)
    return {e: min(seqs) for e, seqs in cursors.items() if len(seqs) == len(names)}


@dataclass
class Repair:
    """What bringing one event's projection in line with the write side did."""

    seq: int  # the projection now reflects the event up to and including this seq
    changes: list[str] = field(default_factory=list)  # what was wrong, one line each


class ProjectionWorker(KafkaWorker):
    """A Kafka worker that projects envelopes into tables, exactly once per envelope (see
    the module). Subclasses set ``name`` and ``topic_settings`` and implement
    :meth:`batch_apply`."""

    max_batch = CATCH_UP_MAX_BATCH
    kafka_defaults = CATCH_UP_FETCH
    batch_linger_ms = STEADY_LINGER_MS

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        super().__init__(group_id=group_id, **kafka_config)
        self._dead_letter_producer: KafkaProducer | None = None

    @abc.abstractmethod
    def batch_apply(self, envelopes: list[Envelope]) -> None:
        """Apply ``envelopes`` (in log order, each new to this worker) to the projection.

        Runs inside the batch's transaction; raise to refuse the batch. The worker then
        retries message by message and dead-letters only the ones that raise again, so an
        implementation must not swallow errors it cannot handle.
        """

    @abc.abstractmethod
    def event_repair(self, event_id: int) -> Repair:
        """Bring this projection's rows of ``event_id`` in line with the write side's state,
        read once; return the seq that state is at.

        Runs in a transaction holding the event's cursor lock; the caller moves the cursor
        to the returned seq, so envelopes up to it are skipped and later ones applied. Used
        when envelopes are lost for good (a broker that lost its log, a trimmed outbox) and
        by ``manage.py reconcile --repair``.
        """

    def envelopes_missing(
        self, event_id: int, *, after_seq: int, before_seq: int
    ) -> list[Envelope]:
        """The envelopes of ``event_id`` with ``after_seq < seq < before_seq``, from wherever
        they are kept besides the log; fewer (or none) when they are not all there."""
        return []

    def projection_repair(self, event_id: int) -> Repair:
        """:meth:`event_repair` under the event's cursor lock, and the cursor moved to the
        seq it reached: safe while this worker runs (its batches wait for the lock)."""
        with transaction.atomic():
            cursor = self._cursors_lock({event_id})[event_id]
            repair = self.event_repair(event_id)
            cursor.last_seq = repair.seq
            cursor.save(update_fields=["last_seq", "updated_at"])
        return repair

    def topics_to_ensure(self) -> list[str]:
        return self.topics + [dead_letter_topic(t) for t in self.topics]

    def close(self) -> None:
        if self._dead_letter_producer is not None:
            self._dead_letter_producer.close(timeout=5)
            self._dead_letter_producer = None

    def batch_process(self, records: list[ConsumerRecord]) -> BatchResult:
        """Decode, apply and dead-letter one polled batch; commits its transaction."""
        close_old_connections()  # as a request would: drop a broken or expired connection
        messages = self.records_decode(records)
        dead = [(m.record, m.error) for m in messages if m.error is not None]
        decoded = [m for m in messages if m.envelope is not None]
        result = BatchResult()
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Django creates foreign keys DEFERRABLE INITIALLY DEFERRED: a violation would
                # only surface at COMMIT, for the whole batch. Checked per statement, it fails
                # the message that caused it, inside that message's savepoint.
                with connection.cursor() as sql:
                    sql.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursors = self._cursors_lock({m.envelope.event_id for m in decoded})  # type: ignore[union-attr]
            before = {event_id: cursor.last_seq for event_id, cursor in cursors.items()}
            fresh, result.duplicates = self._fresh(decoded, cursors)
            failed = self._apply(fresh)
            result.applied = len(fresh) - len(failed)
            dead += failed
            # Past dead letters too: they are in the DLQ, and a redelivery must not run them
            # again after later messages of the event were applied.
            moved = [c for c in cursors.values() if c.last_seq != before[c.event_id]]
            now = timezone.now()
            for cursor in moved:
                cursor.updated_at = now
            ProjectionCursor.objects.bulk_update(moved, ["last_seq", "updated_at"])
            if dead:
                self._dead_letters_send_before_commit(dead)
        result.dead_letters = len(dead)
        return result

    # --- steps of a batch ----------------------------------------------------------------

    def _cursors_lock(self, event_ids: set[int]) -> dict[int, ProjectionCursor]:
        if not event_ids:
            return {}
        ordered = sorted(event_ids)
        ProjectionCursor.objects.bulk_create(
            [ProjectionCursor(consumer=self.name, event_id=e) for e in ordered],
            ignore_conflicts=True,
        )
        # Locked in one order, so two copies of a worker meeting during a rebalance wait
        # for each other instead of both applying the same envelopes.
        rows = (
            ProjectionCursor.objects.select_for_update()
            .filter(consumer=self.name, event_id__in=ordered)
            .order_by("event_id")
        )
        return {row.event_id: row for row in rows}

    def _fresh(
        self, decoded: list[Decoded], cursors: dict[int, ProjectionCursor]
    ) -> tuple[list[Decoded], int]:
        """What to apply, in order: the envelopes past their event's cursor, with the holes
        before any of them filled (or their event repaired); and how many were skipped as
        applied before. Moves the cursors."""
        fresh: list[Decoded] = []
        skipped = 0
        for message in decoded:
            envelope = message.envelope
            assert envelope is not None
            cursor = cursors[envelope.event_id]
            if envelope.seq > cursor.last_seq + 1:
                filled = self._gap_fill(message, cursor)
                if filled is None:
                    # Repaired: the rows reflect the event up to the cursor now, including
                    # what this batch had queued for it.
                    fresh = [m for m in fresh if m.envelope.event_id != envelope.event_id]  # type: ignore[union-attr]
                else:
                    fresh += filled
                    cursor.last_seq = envelope.seq - 1
            if envelope.seq <= cursor.last_seq:
                skipped += 1  # applied before: a redelivery, a duplicate publish, or repaired
                continue
            cursor.last_seq = envelope.seq
            fresh.append(message)
        return fresh, skipped

    def _gap_fill(self, message: Decoded, cursor: ProjectionCursor) -> list[Decoded] | None:
        """The envelopes between the cursor and ``message``, or None once the event was
        repaired instead (``cursor.last_seq`` is then the seq the repair reached).

        A hole means the log lost envelopes (a broker restarted empty, a re-created topic)
        or a consumer resumed past them; applying past it would lose their changes for good.
        """
        envelope = message.envelope
        assert envelope is not None
        after, before = cursor.last_seq, envelope.seq
        missing = self.envelopes_missing(envelope.event_id, after_seq=after, before_seq=before)
        with envelope_context(envelope.id, envelope.request_id):
            if [m.seq for m in missing] == list(range(after + 1, before)):
                log.warning(
                    "worker %s: event %s jumps from seq %s to %s; the %s missing read from "
                    "the outbox",
                    self.name,
                    envelope.event_id,
                    after,
                    before,
                    len(missing),
                )
                metrics.PROJECTION_GAPS.labels(self.name, "filled").inc()
                # Dead-lettered, they would name the record that revealed the hole.
                return [Decoded(message.record, envelope=m) for m in missing]
            repair = self.event_repair(envelope.event_id)
            cursor.last_seq = repair.seq
            log.error(
                "worker %s: event %s jumps from seq %s to %s and the missing envelopes are "
                "gone; repaired from the write side at seq %s: %s",
                self.name,
                envelope.event_id,
                after,
                before,
                repair.seq,
                "; ".join(repair.changes) or "nothing to change",
            )
            metrics.PROJECTION_GAPS.labels(self.name, "repaired").inc()
        return None

    def _apply(self, fresh: list[Decoded]) -> list[tuple[ConsumerRecord, str]]:
        """Apply the batch; on failure, message by message. Returns the dead letters."""
        if not fresh:
            return []
        try:
            with transaction.atomic():
                self.batch_apply([m.envelope for m in fresh])  # type: ignore[misc]
            return []
        except self.transient_errors:
            raise
        except Exception:
            log.warning(
                "worker %s: a batch of %d failed; applying it message by message",
                self.name,
                len(fresh),
                exc_info=True,
            )
        dead = []
        for message in fresh:
            envelope = message.envelope
            assert envelope is not None
            with envelope_context(envelope.id, envelope.request_id):
                try:
                    with transaction.atomic():
                        self.batch_apply([envelope])
                except self.transient_errors:
                    raise
                except Exception as exc:
                    record = message.record
                    log.exception(
                        "worker %s: %s[%s]@%s (%s seq %s) goes to the dead-letter topic",
                        self.name,
                        record.topic,
                        record.partition,
                        record.offset,
                        envelope.type,
                        envelope.seq,
                    )
                    dead.append((record, error_text(exc)))
        return dead

    def _dead_letters_send_before_commit(self, dead: list[tuple[ConsumerRecord, str]]) -> None:
        """Publish the dead letters and wait for the broker's acknowledgement.

        Deliberately before the batch's transaction commits (the name says so): the commit
        moves the cursors past these messages, so after it they would be lost if the
        publish failed. This way a failed publish rolls the batch back (and it is
        retried), and a failed commit at worst publishes a dead letter twice.
        """
        if self._dead_letter_producer is None:
            self._dead_letter_producer = kafka_producer_create()
        producer = self._dead_letter_producer
        futures = []
        for record, error in dead:
            headers = list(record.headers or []) + [
                ("error", error.encode("utf-8")),
                ("consumer", self.name.encode("utf-8")),
                ("source_topic", record.topic.encode("utf-8")),
                ("source_partition", str(record.partition).encode("ascii")),
                ("source_offset", str(record.offset).encode("ascii")),
            ]
            futures.append(
                producer.send(
                    dead_letter_topic(record.topic),
                    key=record.key,
                    value=record.value,
                    headers=headers,
                )
            )
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)  # raises the KafkaError of a failed send
