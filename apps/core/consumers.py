"""Kafka consumers: one base class, a registry by name, and the loop that runs them.

``manage.py consume_kafka <name>`` runs one registered consumer in its consumer group
(docs/architecture.md, Consumers). Each poll is one batch:

1. every message is decoded into an :class:`Envelope`; one that cannot be is a dead letter;
2. the batch is applied in ONE database transaction, together with the consumer's
   :class:`~apps.core.models.ProjectionCursor` rows: an envelope whose ``seq`` is not above
   its event's cursor was applied already (delivery is at least once) and is skipped;
3. when applying the batch raises, that attempt is rolled back and the batch is applied again
   message by message, each in its own savepoint, so only the poison message is a dead letter;
4. dead letters go to ``<topic>.dlq`` (value = the original bytes, the reason in a header);
5. the transaction commits, and only then are the Kafka offsets committed. A crash between
   the two redelivers the batch, and the cursors turn the replay into a no-op.

Subclasses implement :meth:`KafkaBatchConsumer.consume_batch` and register with
:func:`consumer_register`; each app keeps its consumers in its ``consumers.py``, which
:func:`consumer_class_get` imports.
"""

import json
import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import autodiscover_modules
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from apps.core import metrics
from apps.core.kafka import BOOTSTRAP_TIMEOUT_MS, kafka_producer_create, topics_ensure
from apps.core.logs import envelope_context
from apps.core.models import ProjectionCursor

log = logging.getLogger(__name__)

# Records per poll, so per transaction: large enough to amortise the commit under load, small
# enough that a batch finishes well within max_poll_interval_ms and a stop is quick.
MAX_BATCH = 500
# How long one poll waits for records; it bounds how fast an idle consumer notices a stop.
POLL_TIMEOUT_MS = 1_000
# Throughput and lag are logged this often; the lag metric is measured more often.
STATS_INTERVAL_S = 10.0
LAG_INTERVAL_S = 2.0
# Back-off after a transient failure (database or broker down): quick retries for a blip, at
# most one attempt per BACKOFF_MAX_S while the outage lasts.
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 10.0
# A dead letter carries the reason in a header; a traceback-sized text is cut here.
MAX_ERROR_TEXT = 2_000
DLQ_SUFFIX = ".dlq"


# --- envelopes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One domain event as published (docs/architecture.md, Events on Kafka)."""

    id: str
    type: str
    event_id: int
    seq: int
    occurred_at: datetime
    data: dict[str, Any]
    request_id: str | None = None  # the HTTP command's that emitted it (apps/core/logs.py)


class EnvelopeError(ValueError):
    """The message is not an envelope; it goes to the dead-letter topic."""


def envelope_parse(value: bytes | str | dict[str, Any] | None) -> Envelope:
    """Check and convert a message value (JSON) or an already-decoded dict."""
    if value is None:
        raise EnvelopeError("the message has no value")
    if isinstance(value, dict):
        raw = value
    else:
        try:
            raw = json.loads(value)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise EnvelopeError(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError("the envelope is not a JSON object")
    problems = []
    for key in ("id", "type", "occurred_at"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            problems.append(f"{key} must be a non-empty string")
    for key in ("event_id", "seq"):
        # bool is an int in Python, never in the envelope.
        if type(raw.get(key)) is not int or raw[key] < 0:
            problems.append(f"{key} must be a non-negative integer")
    if not isinstance(raw.get("data"), dict):
        problems.append("data must be an object")
    if not isinstance(raw.get("request_id", ""), str):
        problems.append("request_id must be a string")
    occurred_at = None
    if isinstance(raw.get("occurred_at"), str):
        try:
            occurred_at = parse_datetime(raw["occurred_at"])
        except ValueError:
            occurred_at = None
        if occurred_at is None or occurred_at.tzinfo is None:
            problems.append("occurred_at must be an ISO 8601 time with a zone")
    if problems:
        raise EnvelopeError("; ".join(problems))
    assert occurred_at is not None
    return Envelope(
        id=raw["id"],
        type=raw["type"],
        event_id=raw["event_id"],
        seq=raw["seq"],
        occurred_at=occurred_at,
        data=raw["data"],
        request_id=raw.get("request_id"),
    )


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


# --- the base class -----------------------------------------------------------------------


@dataclass
class _Message:
    record: Any  # kafka.consumer.fetcher.ConsumerRecord
    envelope: Envelope | None = None
    error: str | None = None


@dataclass
class BatchResult:
    """What one batch did (for logs and tests)."""

    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0


@dataclass
class _Stats:
    result: BatchResult = field(default_factory=BatchResult)
    since: float = field(default_factory=time.monotonic)
    lag: int | None = None
    lag_at: float = 0.0

    def add(self, name: str, batch: BatchResult, size: int, seconds: float) -> None:
        self.result.applied += batch.applied
        self.result.duplicates += batch.duplicates
        self.result.dead_letters += batch.dead_letters
        metrics.CONSUMER_BATCH_SIZE.labels(name).observe(size)
        metrics.CONSUMER_BATCH_SECONDS.labels(name).observe(seconds)
        for result, count in (
            ("applied", batch.applied),
            ("duplicate", batch.duplicates),
            ("dead_letter", batch.dead_letters),
        ):
            if count:
                metrics.CONSUMER_MESSAGES.labels(name, result).inc(count)


class KafkaBatchConsumer:
    """Base of every Kafka consumer. Subclasses set ``name`` and ``topic_settings`` and
    implement :meth:`consume_batch`.

    ``topic_settings`` names settings (``"KAFKA_TOPIC_SEAT_EVENTS"``), not topics: they are
    read when the consumer runs, so tests that rename topics per test are obeyed.
    """

    name: ClassVar[str] = ""
    topic_settings: ClassVar[tuple[str, ...]] = ()
    max_batch: ClassVar[int] = MAX_BATCH
    poll_timeout_ms: ClassVar[int] = POLL_TIMEOUT_MS
    # Failures of the infrastructure rather than of a message: the whole batch is retried
    # after a back-off instead of dead-lettering every message of it.
    transient_errors: ClassVar[tuple[type[BaseException], ...]] = (
        OperationalError,
        InterfaceError,
        KafkaError,
        redis.ConnectionError,
        redis.TimeoutError,
    )

    def __init__(self, *, group_id: str | None = None, **kafka_config: Any) -> None:
        """``kafka_config`` overrides KafkaConsumer settings (tests shorten group timeouts)."""
        if not self.name or not self.topic_settings:
            raise ImproperlyConfigured(f"{type(self).__name__} needs a name and topic_settings")
        self.group_id = group_id or f"{settings.KAFKA_GROUP_PREFIX}-{self.name}"
        self.kafka_config = kafka_config
        self._producer: KafkaProducer | None = None

    @property
    def topics(self) -> list[str]:
        return [getattr(settings, setting) for setting in self.topic_settings]

    def consume_batch(self, messages: list[Envelope]) -> None:
        """Apply ``messages`` (in log order, each new to this consumer) to the projection.

        Runs inside the batch's transaction; raise to refuse the batch. The loop then
        retries message by message and dead-letters only the ones that raise again, so an
        implementation must not swallow errors it cannot handle.
        """
        raise NotImplementedError

    def after_poll(self) -> None:
        """Called after every poll, idle ones included, once its batch (if any) committed.

        For work that must follow the transactions with a delay (e.g. coalesced publishing);
        it runs at least every ``poll_timeout_ms``.
        """

    def before_stop(self) -> None:
        """Called once when the loop ends, before the dead-letter producer is closed."""

    # --- the loop -------------------------------------------------------------------

    def run(self, stop: threading.Event, max_batches: int | None = None) -> None:
        """Consume until ``stop`` is set (or after ``max_batches`` non-empty batches).

        The batch in hand when ``stop`` is set is finished and committed first.
        """
        consumer = self._kafka_consumer_start(stop)
        if consumer is None:
            return
        stats, batches, failures = _Stats(), 0, 0
        try:
            while not stop.is_set() and (max_batches is None or batches < max_batches):
                metrics.heartbeat(self.name)
                polled = consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_batch)
                if polled:
                    records = [r for rs in polled.values() for r in rs]
                    started = time.monotonic()
                    try:
                        result = self.batch_process(records)
                    except self.transient_errors as exc:
                        failures += 1
                        delay = _backoff_delay(failures)
                        log.warning(
                            "consumer %s: %r; batch retried in %.1fs (failure %d)",
                            self.name,
                            exc,
                            delay,
                            failures,
                        )
                        _rewind(consumer, polled)
                        stop.wait(delay)
                        continue
                    if failures:
                        log.info("consumer %s: recovered after %d failures", self.name, failures)
                        failures = 0
                    # Only now: the transaction has committed. A crash before this line
                    # redelivers the batch, which the cursors absorb.
                    self.offsets_commit(
                        consumer,
                        {
                            tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                            for tp, records in polled.items()
                        },
                    )
                    stats.add(self.name, result, len(records), time.monotonic() - started)
                    batches += 1
                self.after_poll()
                self._lag_maybe_measure(consumer, stats)
                self._stats_maybe_log(consumer, stats)
        finally:
            self.before_stop()
            # No autocommit: whatever was not committed above is redelivered, never skipped.
            consumer.close(autocommit=False)
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
            # This thread's database connections; a worker thread must not leak them.
            connections.close_all()
            log.info("consumer %s: stopped", self.name)

    def _kafka_consumer_start(self, stop: threading.Event) -> KafkaConsumer | None:
        """Subscribe, waiting out a broker that is not up yet; None if stopped meanwhile."""
        failures = 0
        while not stop.is_set():
            metrics.heartbeat(self.name)  # waiting for the broker is alive, not stuck
            topics = self.topics
            try:
                topics_ensure(topics + [dead_letter_topic(t) for t in topics])
                consumer = self._kafka_consumer_create()
            except KafkaError as exc:
                failures += 1
                delay = _backoff_delay(failures)
                log.warning("consumer %s: %r; retrying in %.1fs", self.name, exc, delay)
                stop.wait(delay)
                continue
            consumer.subscribe(topics)
            log.info("consumer %s: starting on %s in group %s", self.name, topics, self.group_id)
            return consumer
        return None

    def offsets_commit(self, consumer: KafkaConsumer, offsets: dict) -> None:
        try:
            consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced during the batch: the partitions' new owner starts from the
            # last committed offsets and skips what this batch applied, by the cursors.
            log.warning("consumer %s: offsets not committed (%s)", self.name, exc)
        except KafkaError as exc:
            # The next successful commit covers these offsets too; a crash before it only
            # redelivers.
            log.warning("consumer %s: offsets not committed (%r)", self.name, exc)

    def batch_process(self, records: list) -> BatchResult:
        """Decode, apply and dead-letter one polled batch; commits its transaction."""
        close_old_connections()  # as a request would: drop a broken or expired connection
        messages = [self._decode(record) for record in records]
        dead = [(m.record, m.error) for m in messages if m.error is not None]
        decoded = [m for m in messages if m.envelope is not None]
        result = BatchResult()
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Django creates foreign keys DEFERRABLE INITIALLY DEFERRED: a violation would
                # only surface at COMMIT, for the whole batch. Checked per statement, it fails
                # the message that caused it, inside that message's savepoint.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursors = self._cursors_lock({m.envelope.event_id for m in decoded})  # type: ignore[union-attr]
            before = {event_id: cursor.last_seq for event_id, cursor in cursors.items()}
            fresh = self._fresh(decoded, cursors)
            result.duplicates = len(decoded) - len(fresh)
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
        # Locked in one order, so two copies of a consumer meeting during a rebalance wait
        # for each other instead of both applying the same envelopes.
        rows = (
            ProjectionCursor.objects.select_for_update()
            .filter(consumer=self.name, event_id__in=ordered)
            .order_by("event_id")
        )
        return {row.event_id: row for row in rows}

    def _fresh(
        self, decoded: list[_Message], cursors: dict[int, ProjectionCursor]
    ) -> list[_Message]:
        fresh = []
        for message in decoded:
            envelope = message.envelope
            assert envelope is not None
            cursor = cursors[envelope.event_id]
            if envelope.seq <= cursor.last_seq:
                continue  # applied before: a redelivery or a duplicate publish
            if envelope.seq > cursor.last_seq + 1:
                # Only topic data loss (retention, an unclean broker) leaves a hole; the
                # projection may be wrong for this event until it is rebuilt.
                with envelope_context(envelope.id, envelope.request_id):
                    log.warning(
                        "consumer %s: event %s jumps from seq %s to %s (%s missing)",
                        self.name,
                        envelope.event_id,
                        cursor.last_seq,
                        envelope.seq,
                        envelope.seq - cursor.last_seq - 1,
                    )
            cursor.last_seq = envelope.seq
            fresh.append(message)
        return fresh

    def _apply(self, fresh: list[_Message]) -> list[tuple[Any, str]]:
        """Apply the batch; on failure, message by message. Returns the dead letters."""
        if not fresh:
            return []
        try:
            with transaction.atomic():
                self.consume_batch([m.envelope for m in fresh])  # type: ignore[misc]
            return []
        except self.transient_errors:
            raise
        except Exception:
            log.warning(
                "consumer %s: a batch of %d failed; applying it message by message",
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
                        self.consume_batch([envelope])
                except self.transient_errors:
                    raise
                except Exception as exc:
                    record = message.record
                    log.exception(
                        "consumer %s: %s[%s]@%s (%s seq %s) goes to the dead-letter topic",
                        self.name,
                        record.topic,
                        record.partition,
                        record.offset,
                        envelope.type,
                        envelope.seq,
                    )
                    dead.append((record, _error_text(exc)))
        return dead

    def _dead_letters_send_before_commit(self, dead: list[tuple[Any, str]]) -> None:
        """Publish the dead letters and wait for the broker's acknowledgement.

        Deliberately before the batch's transaction commits (the name says so): the commit
        moves the cursors past these messages, so after it they would be lost if the
        publish failed. This way a failed publish rolls the batch back (and it is
        retried), and a failed commit at worst publishes a dead letter twice.
        """
        if self._producer is None:
            self._producer = kafka_producer_create()
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
                self._producer.send(
                    dead_letter_topic(record.topic),
                    key=record.key,
                    value=record.value,
                    headers=headers,
                )
            )
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)  # raises the KafkaError of a failed send

    # --- plumbing --------------------------------------------------------------------

    def _decode(self, record: Any) -> _Message:
        try:
            return _Message(record, envelope=envelope_parse(record.value))
        except EnvelopeError as exc:
            log.warning(
                "consumer %s: %s[%s]@%s is not an envelope: %s",
                self.name,
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return _Message(record, error=_error_text(exc))

    def _kafka_consumer_create(self) -> KafkaConsumer:
        config: dict[str, Any] = {
            "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group_id": self.group_id,
            "client_id": f"seats-{self.name}-{socket.gethostname()}-{os.getpid()}",
            # Offsets are committed by run(), after the batch's transaction.
            "enable_auto_commit": False,
            # A new projection is built from the whole log, not from "now".
            "auto_offset_reset": "earliest",
            "max_poll_records": self.max_batch,
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            "reconnect_backoff_ms": 100,
            "reconnect_backoff_max_ms": 5_000,
            # A copy that dies loses its partitions to the others after this long. Heartbeats
            # come from a background thread, so a long batch does not count against it (that
            # is max_poll_interval_ms). 6 s is the least Apache Kafka accepts by default
            # (group.min.session.timeout.ms); Tansu makes each group join wait about half the
            # session timeout, ~3 s here instead of ~23 s with the client's default.
            "session_timeout_ms": 6_000,
            "heartbeat_interval_ms": 1_000,
        }
        # Deployment-wide tuning first, then this instance's (tests shorten group timeouts).
        config.update(getattr(settings, "KAFKA_CONSUMER_CONFIG", {}))
        config.update(self.kafka_config)
        return KafkaConsumer(**config)

    def _lag_maybe_measure(self, consumer: KafkaConsumer, stats: _Stats) -> None:
        """Messages behind, per assigned partition: the lag metric, and the log's total."""
        now = time.monotonic()
        if now - stats.lag_at < LAG_INTERVAL_S:
            return
        stats.lag_at = now
        partitions = consumer.assignment()
        try:
            ends = consumer.end_offsets(list(partitions), timeout_ms=2_000) if partitions else {}
            lags = {
                tp: max(0, ends[tp] - consumer.position(tp, timeout_ms=2_000))
                for tp in partitions
                if tp in ends  # a partition the broker no longer has
            }
        except KafkaError as exc:
            log.debug("consumer %s: lag unknown (%r)", self.name, exc)
            stats.lag = None
            return
        # One consumer per process: partitions lost in a rebalance must not keep their value.
        metrics.CONSUMER_LAG.clear()
        for tp, lag in lags.items():
            metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)
        stats.lag = sum(lags.values())

    def _stats_maybe_log(self, consumer: KafkaConsumer, stats: _Stats) -> None:
        now = time.monotonic()
        elapsed = now - stats.since
        if elapsed < STATS_INTERVAL_S:
            return
        result = stats.result
        log.info(
            "consumer %s: applied %d in %.0fs (%.0f/s), %d duplicates skipped, %d dead letters; "
            "lag %s messages over %d partitions",
            self.name,
            result.applied,
            elapsed,
            result.applied / elapsed,
            result.duplicates,
            result.dead_letters,
            "?" if stats.lag is None else stats.lag,
            len(consumer.assignment()),
        )
        stats.result, stats.since = BatchResult(), now


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]


def _rewind(consumer: KafkaConsumer, polled: dict[TopicPartition, list]) -> None:
    """Fetch the batch again on the next poll (after a transient failure)."""
    assigned = consumer.assignment()
    for tp, records in polled.items():
        # A partition lost in a rebalance meanwhile is its new owner's to redo.
        if tp in assigned:
            consumer.seek(tp, records[0].offset)


def _backoff_delay(failures: int) -> float:
    delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(failures, 16))
    # Jitter keeps the copies of a consumer that lost the same database from retrying in step.
    return delay * random.uniform(0.8, 1.0)


# --- the registry ------------------------------------------------------------------------

_REGISTRY: dict[str, type[KafkaBatchConsumer]] = {}
ConsumerClass = TypeVar("ConsumerClass", bound=type[KafkaBatchConsumer])


def consumer_register(cls: ConsumerClass) -> ConsumerClass:
    """Class decorator: make ``cls`` runnable as ``manage.py consume_kafka <cls.name>``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ImproperlyConfigured(f"two Kafka consumers are named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def consumer_unregister(name: str) -> None:
    """Forget a consumer (tests that register their own)."""
    _REGISTRY.pop(name, None)


def consumers_registered() -> dict[str, type[KafkaBatchConsumer]]:
    """Every consumer of every installed app (imports each app's ``consumers`` module)."""
    autodiscover_modules("consumers")
    return dict(_REGISTRY)


def consumer_class_get(name: str) -> type[KafkaBatchConsumer]:
    """The consumer registered as ``name``; LookupError names the known ones."""
    registered = consumers_registered()
    try:
        return registered[name]
    except KeyError:
        known = ", ".join(sorted(registered)) or "none"
        raise LookupError(f"no Kafka consumer named {name!r} (known: {known})") from None
