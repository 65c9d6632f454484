"""Kafka workers: the processes that read the topics, their base class, loop and registry
(docs/architecture.md, Consumers).

``manage.py consume_kafka <name>`` runs one registered worker in its consumer group
``<KAFKA_GROUP_PREFIX>-<name>``. Its loop polls a batch, hands it to the subclass's
:meth:`KafkaWorker.batch_process`, and only once that returned commits the batch's Kafka
offsets: a crash in between redelivers the batch, never skips it. A transient failure
(database, Redis, broker) fetches the batch again after a back-off (apps/core/loop.py).

Two kinds of worker:

- a plain :class:`KafkaWorker` does what it likes with the records: the gateway's bridge
  (apps/gateway/bridge.py) publishes them as live frames and keeps no state;
- a :class:`~apps.core.projections.ProjectionWorker` applies envelopes to tables in one
  transaction with its cursors, and dead-letters what it cannot apply: persistence and
  stats.

Each app keeps its workers in its ``workers`` module, registered with
:func:`worker_register`; :func:`workers_registered` imports every app's.
"""

import abc
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError, connections
from django.utils.module_loading import autodiscover_modules
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from apps.core import metrics
from apps.core.envelopes import Envelope, EnvelopeError, envelope_parse
from apps.core.kafka import BOOTSTRAP_TIMEOUT_MS, log_epoch_key, topics_ensure
from apps.core.loop import Interval, WorkerLoop
from apps.core.redis import redis_client_get

log = logging.getLogger(__name__)

# Records per poll, so per transaction: large enough to amortise the commit under load, small
# enough that a batch finishes well within max_poll_interval_ms and a stop is quick.
MAX_BATCH = 500
# How long one poll waits for records; it bounds how fast an idle worker notices a stop.
POLL_TIMEOUT_MS = 1_000
# The lag metric is measured this often (the log line has it every STATS_INTERVAL_S).
LAG_INTERVAL_S = 2.0
# A dead letter carries the reason in a header; a traceback-sized text is cut here.
MAX_ERROR_TEXT = 2_000


@dataclass
class BatchResult:
    """What one batch did (for the metrics, the log and tests)."""

    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0


@dataclass
class Decoded:
    """A record and its envelope, or why it is not one."""

    record: ConsumerRecord
    envelope: Envelope | None = None
    error: str | None = None


class KafkaWorker(abc.ABC):
    """Base of every Kafka worker. Subclasses set ``name`` and ``topic_settings`` and
    implement :meth:`batch_process`.

    ``topic_settings`` names settings (``"KAFKA_TOPIC_SEAT_EVENTS"``), not topics: they are
    read when the worker runs, so tests that rename topics per test are obeyed.
    """

    name: ClassVar[str] = ""
    topic_settings: ClassVar[tuple[str, ...]] = ()
    max_batch: ClassVar[int] = MAX_BATCH
    poll_timeout_ms: ClassVar[int] = POLL_TIMEOUT_MS
    # After a batch that read its partitions to their end (nothing more was on the broker),
    # wait this long before the next poll, so that what arrives meanwhile makes one batch
    # rather than many (0: poll again at once). A worker catching up never waits.
    batch_linger_ms: ClassVar[int] = 0
    # KafkaConsumer settings of this kind of worker; keyword arguments to the constructor
    # override them.
    kafka_defaults: ClassVar[dict[str, Any]] = {}
    # Failures of the infrastructure rather than of a message: the whole batch is retried
    # after a back-off.
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
        self.kafka_config = {**self.kafka_defaults, **kafka_config}

    @property
    def topics(self) -> list[str]:
        return [getattr(settings, setting) for setting in self.topic_settings]

    # --- what a subclass provides ------------------------------------------------------

    @abc.abstractmethod
    def batch_process(self, records: list[ConsumerRecord]) -> BatchResult:
        """Handle one polled batch (each partition's records in log order).

        Its offsets are committed once this returns. Raise one of ``transient_errors`` to
        have the batch fetched again and retried after a back-off.
        """

    def after_poll(self) -> None:  # noqa: B027 - optional hook, nothing by default
        """Called after every poll, idle ones included, once its batch (if any) is done.

        For work that must follow the batches with a delay (e.g. coalesced publishing); it
        runs at least every ``poll_timeout_ms``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, nothing by default
        """Release what the worker holds (producers, clients). :meth:`run` calls it when
        its loop ends; whoever calls :meth:`batch_process` directly calls it after."""

    def partitions_lost(self, partitions: set[TopicPartition]) -> None:  # noqa: B027 - optional hook
        """Called after a poll in which a rebalance gave ``partitions``, which this worker
        read until then, to another member."""

    def topics_to_ensure(self) -> list[str]:
        """The topics created at start if missing: the ones read, by default."""
        return self.topics

    # --- the loop -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the batch in hand then is finished and committed."""
        loop = WorkerLoop(self.name, stop, log=log, title=f"worker {self.name}")
        consumer = self._kafka_consumer_start(loop)
        if consumer is None:
            return
        stats = _Stats()
        lag_due = Interval(LAG_INTERVAL_S, due_now=True)
        epoch: str | None = None
        owned: set[TopicPartition] = set()
        try:
            while loop.running():
                polled = consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_batch)
                # Rebalances happen inside poll; the assignment is known locally (no request).
                # Not a rebalance listener: with one attached, kafka-python 3.0 left a worker
                # on its old assignment after the broker restarted empty. An empty one is a
                # rebalance still under way, not yet what it gives this worker.
                assigned = consumer.assignment()
                if assigned:
                    if owned - assigned:
                        self.partitions_lost(owned - assigned)
                    owned = set(assigned)
                if polled:
                    records = [r for rs in polled.values() for r in rs]
                    started = time.monotonic()
                    try:
                        result = self.batch_process(records)
                    except self.transient_errors as exc:
                        _rewind(consumer, polled)
                        loop.failed(exc)
                        continue
                    loop.succeeded()
                    # Only now: the batch is done (a projection's transaction committed, the
                    # bridge's frames published). A crash before this line redelivers it.
                    self.offsets_commit(
                        consumer,
                        {
                            tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                            for tp, records in polled.items()
                        },
                    )
                    stats.add(self.name, result, len(records), time.monotonic() - started)
                    if self.batch_linger_ms and _caught_up(consumer, polled):
                        stop.wait(self.batch_linger_ms / 1000)
                self.after_poll()
                if lag_due.due():
                    epoch = self._log_epoch_check(consumer, epoch)
                    self._lag_measure(consumer, stats)
                elapsed = loop.stats_window()
                if elapsed is not None:
                    self._stats_log(consumer, stats, elapsed)
        finally:
            try:
                self.close()
            finally:
                # No autocommit: whatever was not committed above is redelivered, never skipped.
                consumer.close(autocommit=False)
                # This thread's database connections; a worker thread must not leak them.
                connections.close_all()
                log.info("worker %s: stopped", self.name)

    def offsets_commit(self, consumer: KafkaConsumer, offsets: dict) -> None:
        try:
            consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced during the batch: the partitions' new owner starts from the
            # last committed offsets and redoes this batch (a projection's cursors skip it).
            log.warning("worker %s: offsets not committed (%s)", self.name, exc)
        except KafkaError as exc:
            # The next successful commit covers these offsets too; a crash before it only
            # redelivers.
            log.warning("worker %s: offsets not committed (%r)", self.name, exc)

    def records_decode(self, records: list[ConsumerRecord]) -> list[Decoded]:
        """Each record's envelope, or why it has none (logged)."""
        decoded = []
        for record in records:
            try:
                decoded.append(Decoded(record, envelope=envelope_parse(record.value)))
            except EnvelopeError as exc:
                log.warning(
                    "worker %s: %s[%s]@%s is not an envelope: %s",
                    self.name,
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
                decoded.append(Decoded(record, error=error_text(exc)))
        return decoded

    # --- plumbing --------------------------------------------------------------------

    def _kafka_consumer_start(self, loop: WorkerLoop) -> KafkaConsumer | None:
        """Subscribe, waiting out a broker that is not up yet; None if stopped meanwhile."""
        while loop.running():  # waiting for the broker is alive, not stuck
            topics = self.topics
            try:
                topics_ensure(self.topics_to_ensure())
                consumer = self._kafka_consumer_create()
            except KafkaError as exc:
                loop.failed(exc)
                continue
            loop.succeeded()
            consumer.subscribe(topics)
            log.info("worker %s: starting on %s in group %s", self.name, topics, self.group_id)
            return consumer
        return None

    def _kafka_consumer_create(self) -> KafkaConsumer:
        config: dict[str, Any] = {
            "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group_id": self.group_id,
            "client_id": f"seats-{self.name}-{socket.gethostname()}-{os.getpid()}",
            # Offsets are committed by run(), after the batch is done.
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

    def _log_epoch_check(self, consumer: KafkaConsumer, seen: str | None) -> str | None:
        """Read every assigned partition again from its beginning once the relay found the
        broker had lost its log (apps/core/kafka.py, ``log_epoch_key``): this worker's
        positions may lie past the new log's end. Envelopes applied before are skipped by
        their seq; what the broker lost is filled from the outbox. Returns the epoch now."""
        try:
            epoch = redis_client_get().get(log_epoch_key()) or "0"
        except redis.RedisError as exc:
            log.debug("worker %s: log epoch unknown (%r)", self.name, exc)
            return seen
        if seen is not None and epoch != seen and consumer.assignment():
            log.warning(
                "worker %s: the broker lost its log; reading %d partitions from the beginning",
                self.name,
                len(consumer.assignment()),
            )
            consumer.seek_to_beginning(*consumer.assignment())
        return str(epoch)

    def _lag_measure(self, consumer: KafkaConsumer, stats: "_Stats") -> None:
        """Messages behind, per assigned partition: the lag metric, and the log's total."""
        partitions = consumer.assignment()
        try:
            ends = consumer.end_offsets(list(partitions), timeout_ms=2_000) if partitions else {}
            lags = {
                tp: max(0, ends[tp] - consumer.position(tp, timeout_ms=2_000))
                for tp in partitions
                if tp in ends  # a partition the broker no longer has
            }
        except (KafkaError, KeyError) as exc:
            # KeyError: kafka-python's answer for a partition the broker no longer has (a
            # topic re-created with fewer partitions), until the group rebalances.
            log.debug("worker %s: lag unknown (%r)", self.name, exc)
            stats.lag = None
            return
        # One worker per process: partitions lost in a rebalance must not keep their value.
        metrics.CONSUMER_LAG.clear()
        for tp, lag in lags.items():
            metrics.CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)
        stats.lag = sum(lags.values())

    def _stats_log(self, consumer: KafkaConsumer, stats: "_Stats", elapsed: float) -> None:
        result = stats.result
        log.info(
            "worker %s: applied %d in %.0fs (%.0f/s), %d duplicates skipped, %d dead letters; "
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
        stats.result = BatchResult()


@dataclass
class _Stats:
    result: BatchResult = field(default_factory=BatchResult)
    lag: int | None = None

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


def error_text(exc: BaseException) -> str:
    """An exception as a dead letter's ``error`` header carries it."""
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]


def _caught_up(consumer: KafkaConsumer, polled: dict[TopicPartition, list]) -> bool:
    """Whether ``polled`` ended each of its partitions at the end of the log the broker last
    reported (its high watermark, known from the fetch: no request is made)."""
    for tp, records in polled.items():
        try:
            end = consumer.highwater(tp)
        except KafkaError:  # revoked by a rebalance during the batch
            return False
        if end is None or end > records[-1].offset + 1:
            return False
    return True


def _rewind(consumer: KafkaConsumer, polled: dict[TopicPartition, list]) -> None:
    """Fetch the batch again on the next poll (after a transient failure)."""
    assigned = consumer.assignment()
    for tp, records in polled.items():
        # A partition lost in a rebalance meanwhile is its new owner's to redo.
        if tp in assigned:
            consumer.seek(tp, records[0].offset)


# --- the registry ------------------------------------------------------------------------

_REGISTRY: dict[str, type[KafkaWorker]] = {}
WorkerClass = TypeVar("WorkerClass", bound=type[KafkaWorker])


def worker_register(cls: WorkerClass) -> WorkerClass:
    """Class decorator: make ``cls`` runnable as ``manage.py consume_kafka <cls.name>``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ImproperlyConfigured(f"two Kafka workers are named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def workers_registered() -> dict[str, type[KafkaWorker]]:
    """Every worker of every installed app (imports each app's ``workers`` module)."""
    autodiscover_modules("workers")
    return dict(_REGISTRY)


def worker_class_get(name: str) -> type[KafkaWorker]:
    """The worker registered as ``name``; LookupError names the known ones."""
    registered = workers_registered()
    try:
        return registered[name]
    except KeyError:
        known = ", ".join(sorted(registered)) or "none"
        raise LookupError(f"no Kafka worker named {name!r} (known: {known})") from None
