"""The outbox relay: publishes every event's Redis outbox stream to Kafka.

The inventory scripts append each domain event to its event's outbox stream in the same atomic
step that changes the seats (docs/architecture.md, Write side: Redis). The relay copies those
entries to ``settings.KAFKA_TOPIC_SEAT_EVENTS``, keyed by the event id, and deletes from a
stream only the entries the broker acknowledged. So the stream itself is the relay's
position: a relay that dies, loses the broker or loses Redis resumes from the first entry
still there. Delivery is at least once; a copy sent again after a crash carries the same
``id`` and ``seq``, so consumers drop it by ``(event_id, seq)``.

Several relays may run; each event's stream is published by the one relay holding the
event's lease (lease.py). The loop's heartbeat, back-off, stats line and signals are every
worker's (apps/core/loop.py). docs/architecture.md, Events on Kafka.
"""

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from kafka import KafkaProducer
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)
from kafka.producer.future import FutureRecordMetadata

from apps.core import metrics
from apps.core.kafka import kafka_producer_create, topics_ensure
from apps.core.loop import Interval, WorkerLoop
from apps.core.redis import redis_client_get
from apps.reservations.lease import Leases
from apps.reservations.redis.keys import event_keys

log = logging.getLogger(__name__)

# Entries read per event per pass: enough to fill producer batches under load, small enough
# that one pass (and so a shutdown) never waits long for acknowledgements.
BATCH_SIZE = 500
# An idle relay polls every stream this often. Polling bounds the publish latency at ~10 ms
# for one small pipelined round trip; a blocking XREAD cannot wait on streams in different hash
# slots of a Redis Cluster, and the set of leased streams changes under it anyway.
IDLE_SLEEP_S = 0.01
# After a stop request, the batch in flight gets this long to be acknowledged. Whatever is not
# acknowledged by then stays in its stream and the next relay publishes it.
STOP_GRACE_S = 5.0
# The backlog metrics are measured this often (two Redis commands per leased event).
BACKLOG_INTERVAL_S = 2.0
# A broker that lost a topic under a live producer may acknowledge sends to it without storing
# them: Tansu 0.6 in memory does after a restart. Re-creating the topic this often bounds how
# long such a relay publishes into nothing; on Kafka the check is one cheap admin request.
TOPIC_CHECK_S = 10.0


class RelayPublishError(Exception):
    """Some entries were not acknowledged; the acknowledged ones were trimmed."""

    def __init__(self, *, acknowledged: int, cause: BaseException) -> None:
        super().__init__(f"{acknowledged} acknowledged, then: {cause!r}")
        self.acknowledged = acknowledged
        self.cause = cause


@dataclass
class Published:
    """What one pass over the leased outboxes did."""

    acknowledged: int = 0  # and trimmed
    full: bool = False  # some stream had a whole batch, so more is probably waiting
    error: BaseException | None = None  # why the rest was not acknowledged (it stays)


def _outbox_read(event_ids: list[int], count: int) -> dict[int, list[tuple[str, dict]]]:
    # Always from the start: everything before the first entry was acknowledged and trimmed.
    pipe = redis_client_get().pipeline(transaction=False)
    for event_id in event_ids:
        pipe.xrange(event_keys(event_id).outbox, min="-", max="+", count=count)
    return dict(zip(event_ids, pipe.execute(), strict=True))


def _outbox_trim(acknowledged: dict[int, str]) -> None:
    """Delete each stream's entries up to and including the last acknowledged id."""
    pipe = redis_client_get().pipeline(transaction=False)
    for event_id, last_id in acknowledged.items():
        ms, _, sequence = last_id.partition("-")
        # MINID keeps the given id and everything after it: the id just past the last
        # acknowledged one removes exactly the acknowledged prefix, never an entry this pass
        # did not see acknowledged (exact trim, not "~").
        pipe.xtrim(
            event_keys(event_id).outbox, minid=f"{ms}-{int(sequence) + 1}", approximate=False
        )
    pipe.execute()


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
                # The acknowledgements still count; the trim after them retries Redis.
                log.warning("outbox relay %s: lease renewal failed: %s", leases.owner, exc)


def outbox_publish(
    *,
    producer: KafkaProducer,
    leases: Leases,
    stop: threading.Event | None = None,
    count: int = BATCH_SIZE,
) -> Published:
    """One pass: up to ``count`` entries of each leased event's outbox to the topic, then
    the acknowledged ones trimmed. Never raises for a failed send: ``error`` says why the
    entries from the first unacknowledged one on stay."""
    result = Published()
    event_ids = sorted(leases.held)
    if not event_ids:
        return result
    entries = _outbox_read(event_ids, count)
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    sent: dict[int, list[tuple[str, FutureRecordMetadata | None]]] = {}
    for event_id, items in entries.items():
        if not items:
            continue
        result.full = result.full or len(items) >= count
        sent[event_id] = []
        for entry_id, fields in items:
            envelope = fields.get("envelope")
            if envelope is None:
                # Nothing can be published from it; keeping it would block the stream forever.
                log.error("outbox relay: entry %s of event %s has no envelope", entry_id, event_id)
                sent[event_id].append((entry_id, None))
                continue
            try:
                future = producer.send(topic, key=event_id, value=envelope.encode("utf-8"))
            except KafkaError as exc:
                # No metadata within max_block_ms: the broker is gone. Stop sending; what was
                # sent already is waited for and trimmed below.
                result.error = exc
                break
            sent[event_id].append((entry_id, future))
        if result.error is not None:
            break
    futures = [f for pairs in sent.values() for _, f in pairs if f is not None]
    _acks_wait(futures, producer=producer, leases=leases, stop=stop)
    last_acknowledged: dict[int, str] = {}
    for event_id, pairs in sent.items():
        for entry_id, future in pairs:
            if future is not None and not future.succeeded():
                # Everything after the first failure stays, even if acknowledged: the stream's
                # first entry must always be the first one not yet on Kafka.
                if result.error is None:
                    result.error = future.exception or KafkaTimeoutError("no acknowledgement")
                break
            last_acknowledged[event_id] = entry_id
            if future is not None:
                result.acknowledged += 1
    if last_acknowledged:
        _outbox_trim(last_acknowledged)
    return result


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
        # Records still queued are dropped with the producer; their entries were not trimmed.
        log.warning("outbox relay: producer did not close cleanly: %s", exc)


@dataclass
class _Stats:
    published: int = 0
    backlog: int = 0
    oldest_ms: int | None = None
    backlog_due: Interval = field(
        default_factory=lambda: Interval(BACKLOG_INTERVAL_S, due_now=True)
    )

    def maybe_measure(self, leases: Leases) -> None:
        """The outbox backlog of each event this relay leases, as metrics (and for the log).

        Entries leave the outbox only when the broker acknowledged them, so its length is
        what is not published yet; stream ids start with the append time in ms, so the
        first id dates the oldest."""
        if not self.backlog_due.due():
            return
        events = sorted(leases.held)
        pipe = redis_client_get().pipeline(transaction=False)
        for event_id in events:
            pipe.xlen(event_keys(event_id).outbox)
            pipe.xrange(event_keys(event_id).outbox, count=1)
        replies = pipe.execute() if events else []
        # Only the events leased now: another relay reports the others.
        metrics.OUTBOX_BACKLOG.clear()
        metrics.OUTBOX_OLDEST_AGE.clear()
        self.backlog, self.oldest_ms = 0, None
        for event_id, length, first in zip(events, replies[0::2], replies[1::2], strict=True):
            first_ms = int(first[0][0].split("-")[0]) if first else None
            age = 0.0 if first_ms is None else max(0.0, time.time() - first_ms / 1000)
            metrics.OUTBOX_BACKLOG.labels(str(event_id)).set(length)
            metrics.OUTBOX_OLDEST_AGE.labels(str(event_id)).set(age)
            self.backlog += length
            if first_ms is not None:
                self.oldest_ms = min(first_ms, self.oldest_ms or first_ms)

    def log(self, leases: Leases, elapsed: float) -> None:
        oldest_ms = self.oldest_ms
        age = "-" if oldest_ms is None else f"{max(0.0, time.time() - oldest_ms / 1000):.1f}s"
        log.info(
            "outbox relay %s: published %d in %.0fs (%.0f/s); %d events leased, "
            "backlog %d entries, oldest unpublished %s",
            leases.owner,
            self.published,
            elapsed,
            self.published / elapsed,
            len(leases.held),
            self.backlog,
            age,
        )
        self.published = 0


def outbox_relay_run(
    *, stop: threading.Event, producer_options: dict[str, Any] | None = None
) -> None:
    """Relay until ``stop`` is set; survives broker and Redis outages without losing entries.

    ``producer_options`` override kafka_producer_create's settings (tests shorten timeouts).
    """
    leases = Leases()
    loop = WorkerLoop("relay", stop, log=log, title=f"outbox relay {leases.owner}")
    stats = _Stats()
    producer: KafkaProducer | None = None
    topic_check_due = Interval(TOPIC_CHECK_S)
    log.info("outbox relay %s: starting", leases.owner)
    try:
        while loop.running():
            try:
                # Also during outages, when the backlog matters most.
                stats.maybe_measure(leases)
                elapsed = loop.stats_window()
                if elapsed is not None:
                    stats.log(leases, elapsed)
                topic = settings.KAFKA_TOPIC_SEAT_EVENTS
                if producer is not None and topic_check_due.due() and _topic_ensure(topic):
                    log.error(
                        "outbox relay %s: topic %s had vanished from the broker; what it "
                        "acknowledged in the last %.0fs may be lost",
                        leases.owner,
                        topic,
                        TOPIC_CHECK_S,
                    )
                    _producer_close(producer, timeout=0)
                    producer = None
                if producer is None:
                    _topic_ensure(topic)
                    producer = kafka_producer_create(**(producer_options or {}))
                    topic_check_due = Interval(TOPIC_CHECK_S)
                leases.refresh()
                result = outbox_publish(producer=producer, leases=leases, stop=stop)
                stats.published += result.acknowledged
                metrics.RELAY_PUBLISHED.inc(result.acknowledged)
                if result.error is not None:
                    raise RelayPublishError(acknowledged=result.acknowledged, cause=result.error)
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
        log.info("outbox relay %s: stopped", leases.owner)
