"""The outbox relay: publishes every event's Redis outbox stream to Kafka.

The inventory scripts append each domain event to its event's outbox stream in the same atomic
step that changes the seats (docs/architecture.md, Write side: Redis). The relay copies those
entries to ``settings.KAFKA_TOPIC_SEAT_EVENTS``, keyed by the event id, and remembers (in
memory) the last entry of each event the broker acknowledged. Entries leave the stream only
once every projection has applied them (outbox.py), so whenever the broker may have lost what
it acknowledged (a failed send, the topic gone, a partition's end offset moving back) the
relay forgets those positions and publishes every entry still kept again; so does a relay
that starts or takes an event over. Delivery is at least once; a copy sent again carries the
same ``id`` and ``seq``, so consumers drop it by ``(event_id, seq)``.

Several relays may run; each event's stream is published by the one relay holding the
event's lease (lease.py). The loop's heartbeat, back-off, stats line and signals are every
worker's (apps/core/loop.py). docs/architecture.md, "Events on Kafka" and "Gaps and repair".
"""

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)
from kafka.producer.future import FutureRecordMetadata

from apps.core import metrics
from apps.core.kafka import (
    BOOTSTRAP_TIMEOUT_MS,
    kafka_producer_create,
    log_epoch_key,
    topics_ensure,
)
from apps.core.loop import Interval, WorkerLoop
from apps.core.projections import projections_applied
from apps.core.redis import redis_client_get
from apps.reservations.lease import Leases
from apps.reservations.outbox import outbox_cap, outbox_measure, outbox_read, outbox_trim_applied

log = logging.getLogger(__name__)

# Entries read per event per pass: enough to fill producer batches under load, small enough
# that one pass (and so a shutdown) never waits long for acknowledgements.
BATCH_SIZE = 500
# An idle relay polls every stream this often. Polling bounds the publish latency at ~10 ms
# for one small pipelined round trip; a blocking XREAD cannot wait on streams in different hash
# slots of a Redis Cluster, and the set of leased streams changes under it anyway.
IDLE_SLEEP_S = 0.01
# After a stop request, the batch in flight gets this long to be acknowledged. Whatever is not
# acknowledged by then is still kept, and the next relay publishes it.
STOP_GRACE_S = 5.0
# The backlog metrics are measured this often (three Redis commands per leased event).
BACKLOG_INTERVAL_S = 2.0
# A broker that lost a topic under a live producer may acknowledge sends to it without storing
# them: Tansu 0.6 in memory does after a restart. Checking the topic this often bounds how
# long such a relay publishes into nothing before it publishes everything kept again; on
# Kafka the check is a few cheap requests.
TOPIC_CHECK_S = 5.0
# The projections' cursors are read (one Postgres query) and what they all applied is dropped
# from the outboxes this often.
TRIM_INTERVAL_S = 1.0


class RelayPublishError(Exception):
    """Some entries were not acknowledged; they are sent again."""

    def __init__(self, *, acknowledged: int, cause: BaseException) -> None:
        super().__init__(f"{acknowledged} acknowledged, then: {cause!r}")
        self.acknowledged = acknowledged
        self.cause = cause


@dataclass(frozen=True)
class Sent:
    """The last entry of an event the broker acknowledged."""

    id: str
    seq: int


@dataclass
class Published:
    """What one pass over the leased outboxes did."""

    acknowledged: int = 0
    full: bool = False  # some stream had a whole batch, so more is probably waiting
    error: BaseException | None = None  # why the rest was not acknowledged (sent again)


def _acks_wait(
    futures: list[FutureRecordMetadata],
    *,
    producer: KafkaProducer,
    leases: Leases,
    stop: threading.Event | None,
) -> None:
    """Block until every send has an outcome, renewing leases meanwhile.

    The producer settles every send within its delivery timeout; the deadline past it only
    guards against a client bug. A stop request shortens the wait to STOP_GRACE_S.
    """
    deadline = time.monotonic() + producer.config["delivery_timeout_ms"] / 1000 + 30.0
    for future in futures:
        while not future.is_done:
            now = time.monotonic()
            if stop is not None and stop.is_set():
                deadline = min(deadline, now + STOP_GRACE_S)
            if now > deadline:
                return
            # Success, failure or a slice timeout: the outcome is read from the future later.
            with contextlib.suppress(Exception):
                future.get(timeout=0.25)
            try:
                leases.refresh()
            except redis.RedisError as exc:
                # The acknowledgements still count; the next pass renews again.
                log.warning("outbox relay %s: lease renewal failed: %s", leases.owner, exc)


def outbox_publish(
    *,
    producer: KafkaProducer,
    leases: Leases,
    sent: dict[int, Sent],
    stop: threading.Event | None = None,
    count: int = BATCH_SIZE,
) -> Published:
    """One pass: up to ``count`` entries of each leased event's outbox after its ``sent``
    position (from the first entry kept when it has none) to the topic; ``sent`` moves to
    the last one acknowledged. Never raises for a failed send: ``error`` says why the
    entries from the first unacknowledged one on are still to send."""
    result = Published()
    event_ids = sorted(leases.held)
    if not event_ids:
        return result
    entries = outbox_read({e: sent[e].id if e in sent else None for e in event_ids}, count)
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    pending: dict[int, list[tuple[Sent, FutureRecordMetadata | None]]] = {}
    for event_id, items in entries.items():
        if not items:
            continue
        result.full = result.full or len(items) >= count
        pending[event_id] = []
        for entry_id, fields in items:
            entry = Sent(entry_id, int(fields.get("seq", 0)))
            envelope = fields.get("envelope")
            if envelope is None:
                # Nothing can be published from it; waiting for it would block the stream.
                log.error("outbox relay: entry %s of event %s has no envelope", entry_id, event_id)
                pending[event_id].append((entry, None))
                continue
            try:
                future = producer.send(topic, key=event_id, value=envelope.encode("utf-8"))
            except KafkaError as exc:
                # No metadata within max_block_ms: the broker is gone. Stop sending; what was
                # sent already is waited for below.
                result.error = exc
                break
            pending[event_id].append((entry, future))
        if result.error is not None:
            break
    futures = [f for items in pending.values() for _, f in items if f is not None]
    _acks_wait(futures, producer=producer, leases=leases, stop=stop)
    for event_id, sends in pending.items():
        for entry, future in sends:
            if future is not None and not future.succeeded():
                # The position stops before the first failure, even if later sends were
                # acknowledged: each event's envelopes reach the topic in seq order.
                if result.error is None:
                    result.error = future.exception or KafkaTimeoutError("no acknowledgement")
                break
            sent[event_id] = entry
            if future is not None:
                result.acknowledged += 1
    return result


def outbox_trim(*, leases: Leases, sent: dict[int, Sent]) -> int:
    """Drop from the leased outboxes what every projection applied, then bound each at
    SEATS_OUTBOX_KEEP_MAX (outbox.py). Returns how many entries were dropped."""
    event_ids = sorted(leases.held)
    if not event_ids:
        return 0
    dropped = outbox_trim_applied(projections_applied(event_ids))
    keep_max = settings.SEATS_OUTBOX_KEEP_MAX
    for event_id in event_ids:
        if event_id not in sent:
            continue  # nothing of it acknowledged since the last loss: nothing may go
        capped = outbox_cap(event_id, keep_max=keep_max, published_upto=sent[event_id].id)
        if capped:
            log.warning(
                "outbox relay: event %s kept over %d entries the projections have not all "
                "applied; dropped the oldest %d (the broker has them)",
                event_id,
                keep_max,
                capped,
            )
        dropped += capped
    return dropped


class LogWatch:
    """Tells when the broker lost the topic's log: its partitions changed (it vanished, or
    came back with other partitions) or a partition's end offset moved back. End offsets
    only ever grow, also on brokers that under-report them (Tansu reports a batch's base
    offset + 1)."""

    def __init__(self) -> None:
        self._reader: KafkaConsumer | None = None
        self._ends: dict[int, int] | None = None
        self.looked = False  # whether a baseline was ever taken

    def lost(self, topic: str) -> bool:
        if self._reader is None:
            self._reader = KafkaConsumer(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                group_id=None,  # reads offsets only: no group, nothing committed
                enable_auto_commit=False,
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                request_timeout_ms=10_000,
            )
        self._reader.topics()  # fresh metadata: the partitions as the broker has them now
        found = self._reader.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        try:
            ends = self._reader.end_offsets(partitions, timeout_ms=5_000) if partitions else {}
        except KeyError:
            # kafka-python's answer for a partition that vanished since the metadata above.
            self._ends = None
            return True
        now = {tp.partition: offset for tp, offset in ends.items()}
        before, self._ends = self._ends, now
        self.looked = True
        if before is None:
            return False  # the first look: the baseline
        return now.keys() != before.keys() or any(now[p] < before[p] for p in now)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close(autocommit=False)
            self._reader = None


def _log_lost(watch: LogWatch, topic: str, leases: Leases) -> bool:
    """Whether the broker lost ``topic``'s log since the last look (it was missing, or its
    partitions or end offsets went back); if so, the workers are told to re-read it. The
    first look (the relay starting) only takes the log as it is."""
    first = not watch.looked
    created = _topic_ensure(topic)
    if not watch.lost(topic) and (first or not created):
        return False
    redis_client_get().incr(log_epoch_key())  # the workers re-read
    log.error(
        "outbox relay %s: the broker lost topic %s's log; publishing every entry kept again",
        leases.owner,
        topic,
    )
    return True


def _topic_ensure(topic: str) -> bool:
    """Create the topic if it is missing; True when it was."""
    try:
        return bool(topics_ensure([topic]))
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError) as exc:
        # Where operators provision topics, the relay may not create them; it relies on them.
        log.warning("outbox relay: cannot check topic %s (%s); assuming it exists", topic, exc)
        return False


def _producer_close(producer: KafkaProducer | None, timeout: float) -> None:
    if producer is None:
        return
    try:
        producer.close(timeout=timeout)
    except KafkaError as exc:
        # Records still queued are dropped with the producer; their entries are sent again.
        log.warning("outbox relay: producer did not close cleanly: %s", exc)


@dataclass
class _Stats:
    published: int = 0
    dropped: int = 0
    unpublished: int = 0
    kept: int = 0
    oldest_ms: int | None = None
    backlog_due: Interval = field(
        default_factory=lambda: Interval(BACKLOG_INTERVAL_S, due_now=True)
    )

    def maybe_measure(self, leases: Leases, sent: dict[int, Sent]) -> None:
        """The outbox of each event this relay leases, as metrics (and for the log): the
        entries not published yet (the event's seq past the last acknowledged one; all kept
        ones before the first acknowledgement), the entries kept (not applied by every
        projection yet) and the age of the oldest kept one."""
        if not self.backlog_due.due():
            return
        measured = outbox_measure(sorted(leases.held))
        # Only the events leased now: another relay reports the others.
        for gauge in (metrics.OUTBOX_BACKLOG, metrics.OUTBOX_KEPT, metrics.OUTBOX_OLDEST_AGE):
            gauge.clear()
        self.unpublished, self.kept, self.oldest_ms = 0, 0, None
        for event_id, (length, first_ms, seq) in measured.items():
            unpublished = max(0, seq - sent[event_id].seq) if event_id in sent else length
            age = 0.0 if first_ms is None else max(0.0, time.time() - first_ms / 1000)
            metrics.OUTBOX_BACKLOG.labels(str(event_id)).set(unpublished)
            metrics.OUTBOX_KEPT.labels(str(event_id)).set(length)
            metrics.OUTBOX_OLDEST_AGE.labels(str(event_id)).set(age)
            self.unpublished += unpublished
            self.kept += length
            if first_ms is not None:
                self.oldest_ms = min(first_ms, self.oldest_ms or first_ms)

    def log(self, leases: Leases, elapsed: float) -> None:
        oldest_ms = self.oldest_ms
        age = "-" if oldest_ms is None else f"{max(0.0, time.time() - oldest_ms / 1000):.1f}s"
        log.info(
            "outbox relay %s: published %d in %.0fs (%.0f/s), dropped %d applied; %d events "
            "leased, %d entries unpublished, %d kept, oldest kept %s",
            leases.owner,
            self.published,
            elapsed,
            self.published / elapsed,
            self.dropped,
            len(leases.held),
            self.unpublished,
            self.kept,
            age,
        )
        self.published = self.dropped = 0


def outbox_relay_run(
    *, stop: threading.Event, producer_options: dict[str, Any] | None = None
) -> None:
    """Relay until ``stop`` is set; survives broker, Redis and Postgres outages without
    losing entries.

    ``producer_options`` override kafka_producer_create's settings (tests shorten timeouts).
    """
    leases = Leases()
    loop = WorkerLoop("relay", stop, log=log, title=f"outbox relay {leases.owner}")
    stats = _Stats()
    producer: KafkaProducer | None = None
    sent: dict[int, Sent] = {}  # per leased event; none: from the first entry kept
    watch = LogWatch()
    topic_check_due = Interval(TOPIC_CHECK_S)
    trim_due = Interval(TRIM_INTERVAL_S)
    log.info("outbox relay %s: starting", leases.owner)
    try:
        while loop.running():
            try:
                # Also during outages, when the backlog matters most.
                stats.maybe_measure(leases, sent)
                elapsed = loop.stats_window()
                if elapsed is not None:
                    stats.log(leases, elapsed)
                topic = settings.KAFKA_TOPIC_SEAT_EVENTS
                if (
                    producer is not None
                    and topic_check_due.due()
                    and _log_lost(watch, topic, leases)
                ):
                    _producer_close(producer, timeout=0)
                    producer = None
                if producer is None:
                    # After a failure or a loss, what the broker acknowledged may be gone
                    # with its log; the outboxes keep every entry a projection still needs.
                    # A failed send may be the broker restarting empty: compared with the
                    # log as last seen (at start, this only takes it as the baseline).
                    sent.clear()
                    _log_lost(watch, topic, leases)
                    producer = kafka_producer_create(**(producer_options or {}))
                    topic_check_due = Interval(TOPIC_CHECK_S)
                leases.refresh()
                for event_id in sent.keys() - leases.held:
                    del sent[event_id]  # another relay leases it now
                result = outbox_publish(producer=producer, leases=leases, sent=sent, stop=stop)
                stats.published += result.acknowledged
                metrics.RELAY_PUBLISHED.inc(result.acknowledged)
                if result.error is not None:
                    raise RelayPublishError(acknowledged=result.acknowledged, cause=result.error)
                if trim_due.due():
                    stats.dropped += _trim_unless_postgres_away(leases, sent)
            except (KafkaError, RelayPublishError, redis.RedisError) as exc:
                if not isinstance(exc, redis.RedisError):
                    # A fresh producer re-bootstraps, re-creates a topic a restarted broker
                    # lost, and cannot send anything queued behind the failed records.
                    _producer_close(producer, timeout=0)
                    producer = None
                loop.failed(exc)
                continue
            loop.succeeded()
            if not result.full:
                stop.wait(IDLE_SLEEP_S)
    finally:
        try:
            leases.release()
        except redis.RedisError as exc:
            log.warning("outbox relay %s: leases not released (%s); they expire", leases.owner, exc)
        _producer_close(producer, timeout=STOP_GRACE_S)
        watch.close()
        # This thread's database connection (the cursors the trim reads): not leaked.
        connections.close_all()
        log.info("outbox relay %s: stopped", leases.owner)


def _trim_unless_postgres_away(leases: Leases, sent: dict[int, Sent]) -> int:
    """outbox_trim, postponed while Postgres does not answer: the outboxes keep more
    meanwhile, which is always safe, and publishing goes on."""
    close_old_connections()  # the relay is not a request: drop a broken connection itself
    try:
        return outbox_trim(leases=leases, sent=sent)
    except DatabaseError as exc:
        log.warning("outbox relay %s: cursors unreadable (%s); trimming later", leases.owner, exc)
        return 0
