"""The outbox relay: publishes every event's Redis outbox stream to Kafka.

The inventory scripts append each domain event to its event's outbox stream in the same atomic
step that changes the seats (docs/architecture.md, Write side: Redis). The relay copies those
entries to ``settings.KAFKA_TOPIC_SEAT_EVENTS``, keyed by the event id, and deletes from a
stream only the entries the broker acknowledged. So the stream itself is the relay's
position: a relay that dies, loses the broker or loses Redis resumes from the first entry
still there. Delivery is at least once; a copy sent again after a crash carries the same
``id`` and ``seq``, so consumers drop it by ``(event_id, seq)``.

Several relays may run. Each event's stream is published by the one relay holding the event's
lease (``event_keys(id).relay_lease``), so one event's messages leave in one order from one
producer. A relay that stops renewing (crash, long pause) loses its leases after LEASE_TTL_MS
and another relay takes over from the stream's first entry.
"""

import contextlib
import logging
import os
import random
import secrets
import socket
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
from apps.core.redis import redis_client_get
from apps.reservations.redis.keys import event_keys, events_index_key

log = logging.getLogger(__name__)

# Entries read per event per pass: enough to fill producer batches under load, small enough
# that one pass (and so a shutdown) never waits long for acknowledgements.
BATCH_SIZE = 500
# An idle relay polls every stream this often. Polling bounds the publish latency at ~10 ms
# for one small pipelined round trip; a blocking XREAD cannot wait on streams in different hash
# slots of a Redis Cluster, and the set of leased streams changes under it anyway.
IDLE_SLEEP_S = 0.01
# Back-off after a broker or Redis failure: quick retries for a blip, at most one attempt per
# BACKOFF_MAX_S while the outage lasts.
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
# A crashed relay's events wait this long before another relay takes them over; the owner
# renews every LEASE_REFRESH_S, so it must miss several renewals in a row to lose a lease.
LEASE_TTL_MS = 10_000
LEASE_REFRESH_S = 1.0
# After a stop request, the batch in flight gets this long to be acknowledged. Whatever is not
# acknowledged by then stays in its stream and the next relay publishes it.
STOP_GRACE_S = 5.0
# Throughput and lag are logged this often.
STATS_INTERVAL_S = 10.0
# The backlog metrics are measured this often (two Redis commands per leased event).
BACKLOG_INTERVAL_S = 2.0
# A broker that lost a topic under a live producer may acknowledge sends to it without storing
# them: Tansu 0.6 in memory does after a restart. Re-creating the topic this often bounds how
# long such a relay publishes into nothing; on Kafka the check is one cheap admin request.
TOPIC_CHECK_S = 10.0

# Compare-and-pexpire / compare-and-delete: a relay never extends or drops a lease another
# relay took over after its own expired.
_LEASE_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_LEASE_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RelayPublishError(Exception):
    """Some entries were not acknowledged; the acknowledged ones were trimmed."""

    def __init__(self, *, acknowledged: int, cause: BaseException) -> None:
        super().__init__(f"{acknowledged} acknowledged, then: {cause!r}")
        self.acknowledged = acknowledged
        self.cause = cause


@dataclass
class _Pass:
    read: int = 0
    acknowledged: int = 0
    full: bool = False  # some stream had a whole batch, so more is probably waiting
    drained: set[int] = field(default_factory=set)  # events whose stream was empty
    error: BaseException | None = None


@dataclass
class _Relay:
    """One relay's identity and the leases it holds."""

    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    )
    held: set[int] = field(default_factory=set)
    indexed: set[int] = field(default_factory=set)
    refreshed_at: float = float("-inf")

    def __post_init__(self) -> None:
        client = redis_client_get()
        self._renew = client.register_script(_LEASE_RENEW_LUA)
        self._release = client.register_script(_LEASE_RELEASE_LUA)

    def leases_refresh(self, *, force: bool = False) -> None:
        """Renew the leases held and take the free ones, at most once per LEASE_REFRESH_S."""
        now = time.monotonic()
        if not force and now - self.refreshed_at < LEASE_REFRESH_S:
            return
        client = redis_client_get()
        self.indexed = {int(m) for m in client.smembers(events_index_key()) if m.isdigit()}
        held = sorted(self.held)
        wanted = sorted(self.indexed - self.held)
        pipe = client.pipeline(transaction=False)
        for event_id in held:
            self._renew(
                keys=[event_keys(event_id).relay_lease],
                args=[self.owner, LEASE_TTL_MS],
                client=pipe,
            )
        for event_id in wanted:
            pipe.set(event_keys(event_id).relay_lease, self.owner, nx=True, px=LEASE_TTL_MS)
        replies = pipe.execute()
        lost = {e for e, renewed in zip(held, replies[: len(held)], strict=True) if not renewed}
        if lost:
            # Another relay may be publishing these now; duplicates are possible, never loss.
            log.warning("outbox relay %s: lost the lease of events %s", self.owner, sorted(lost))
        won = {e for e, taken in zip(wanted, replies[len(held) :], strict=True) if taken}
        self.held = (self.held - lost) | won
        self.refreshed_at = now

    def leases_release(self, event_ids: set[int] | None = None) -> None:
        """Hand leases back (all by default), so another relay need not wait for the TTL."""
        event_ids = set(self.held) if event_ids is None else event_ids & self.held
        if not event_ids:
            return
        pipe = redis_client_get().pipeline(transaction=False)
        for event_id in sorted(event_ids):
            self._release(keys=[event_keys(event_id).relay_lease], args=[self.owner], client=pipe)
        pipe.execute()
        self.held -= event_ids


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
    relay: _Relay,
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
                relay.leases_refresh()
            except redis.RedisError as exc:
                # The acknowledgements still count; the trim after them retries Redis.
                log.warning("outbox relay %s: lease renewal failed: %s", relay.owner, exc)


def _relay_pass(
    *,
    producer: KafkaProducer,
    relay: _Relay,
    stop: threading.Event | None = None,
    count: int = BATCH_SIZE,
) -> _Pass:
    result = _Pass()
    event_ids = sorted(relay.held)
    if not event_ids:
        return result
    entries = _outbox_read(event_ids, count)
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    sent: dict[int, list[tuple[str, FutureRecordMetadata | None]]] = {}
    for event_id, items in entries.items():
        if not items:
            result.drained.add(event_id)
            continue
        result.read += len(items)
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
    _acks_wait(futures, producer=producer, relay=relay, stop=stop)
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


def outbox_relay_once(*, producer: KafkaProducer) -> int:
    """Publish what the outboxes hold now, for every event no other relay leases.

    Returns how many entries the broker acknowledged (and were trimmed). Raises
    RelayPublishError when some were not; they stay in their streams.
    """
    relay = _Relay()
    acknowledged = 0
    try:
        relay.leases_refresh(force=True)
        while True:
            result = _relay_pass(producer=producer, relay=relay)
            acknowledged += result.acknowledged
            if result.error is not None:
                raise RelayPublishError(acknowledged=acknowledged, cause=result.error)
            if not result.full:
                return acknowledged
    finally:
        relay.leases_release()


def _backoff_delay(failures: int) -> float:
    delay = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(failures - 1, 16))
    # Jitter keeps several relays that lost the same broker from retrying in lockstep.
    return delay * random.uniform(0.8, 1.0)


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
    since: float = field(default_factory=time.monotonic)
    backlog: int = 0
    oldest_ms: int | None = None
    measured_at: float = 0.0

    def maybe_measure(self, relay: _Relay) -> None:
        """The outbox backlog of each event this relay leases, as metrics (and for the log).

        Entries leave the outbox only when the broker acknowledged them, so its length is
        what is not published yet; stream ids start with the append time in ms, so the
        first id dates the oldest."""
        now = time.monotonic()
        if now - self.measured_at < BACKLOG_INTERVAL_S:
            return
        self.measured_at = now
        events = sorted(relay.held)
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

    def maybe_log(self, relay: _Relay) -> None:
        now = time.monotonic()
        if now - self.since < STATS_INTERVAL_S:
            return
        oldest_ms = self.oldest_ms
        age = "-" if oldest_ms is None else f"{max(0.0, time.time() - oldest_ms / 1000):.1f}s"
        elapsed = now - self.since
        log.info(
            "outbox relay %s: published %d in %.0fs (%.0f/s); %d events leased, "
            "backlog %d entries, oldest unpublished %s",
            relay.owner,
            self.published,
            elapsed,
            self.published / elapsed,
            len(relay.held),
            self.backlog,
            age,
        )
        self.published, self.since = 0, now


def outbox_relay_run(
    *, stop: threading.Event, producer_options: dict[str, Any] | None = None
) -> None:
    """Relay until ``stop`` is set; survives broker and Redis outages without losing entries.

    ``producer_options`` override kafka_producer_create's settings (tests shorten timeouts).
    """
    relay = _Relay()
    stats = _Stats()
    producer: KafkaProducer | None = None
    topic_checked_at = 0.0
    failures = 0
    log.info("outbox relay %s: starting", relay.owner)
    try:
        while not stop.is_set():
            try:
                metrics.heartbeat("relay")
                # Also during outages, when the backlog matters most.
                stats.maybe_measure(relay)
                stats.maybe_log(relay)
                topic = settings.KAFKA_TOPIC_SEAT_EVENTS
                if producer is not None and time.monotonic() - topic_checked_at > TOPIC_CHECK_S:
                    topic_checked_at = time.monotonic()
                    if _topic_ensure(topic):
                        log.error(
                            "outbox relay %s: topic %s had vanished from the broker; what it "
                            "acknowledged in the last %.0fs may be lost",
                            relay.owner,
                            topic,
                            TOPIC_CHECK_S,
                        )
                        _producer_close(producer, timeout=0)
                        producer = None
                if producer is None:
                    _topic_ensure(topic)
                    producer = kafka_producer_create(**(producer_options or {}))
                    topic_checked_at = time.monotonic()
                relay.leases_refresh()
                result = _relay_pass(producer=producer, relay=relay, stop=stop)
                stats.published += result.acknowledged
                metrics.RELAY_PUBLISHED.inc(result.acknowledged)
                if result.error is not None:
                    raise RelayPublishError(acknowledged=result.acknowledged, cause=result.error)
                # An event dropped from the index keeps its lease until its outbox is empty,
                # so nothing it appended before leaving is stranded.
                relay.leases_release(result.drained - relay.indexed)
            except (KafkaError, RelayPublishError, redis.RedisError) as exc:
                failures += 1
                delay = _backoff_delay(failures)
                log.warning(
                    "outbox relay %s: %s; retrying in %.1fs (failure %d)",
                    relay.owner,
                    exc,
                    delay,
                    failures,
                )
                if not isinstance(exc, redis.RedisError):
                    # A fresh producer re-bootstraps, re-creates a topic a restarted broker
                    # lost, and cannot send anything queued behind the failed records.
                    _producer_close(producer, timeout=0)
                    producer = None
                stop.wait(delay)
                continue
            if failures:
                log.info("outbox relay %s: recovered after %d failures", relay.owner, failures)
                failures = 0
            if not result.full:
                stop.wait(IDLE_SLEEP_S)
    finally:
        try:
            relay.leases_release()
        except redis.RedisError as exc:
            log.warning("outbox relay %s: leases not released (%s); they expire", relay.owner, exc)
        _producer_close(producer, timeout=STOP_GRACE_S)
        log.info("outbox relay %s: stopped", relay.owner)
