"""Writes of the stats projection: seat events → counts, the Redis hot copy, stats.updated."""

import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from kafka import KafkaProducer
from kafka.errors import KafkaError

from apps.core.consumers import Envelope
from apps.core.kafka import envelope_encode, kafka_producer_create, topics_ensure
from apps.reservations.selectors import event_seat_places, event_seat_prices, event_sections
from apps.stats.cache import stats_cache_set
from apps.stats.models import EventStats, SectionStats
from apps.stats.selectors import stats_body_from_db

log = logging.getLogger(__name__)

# What each seat event does to each of its seats: (state it leaves, state it enters).
# seat.released says which by its reason. Other types (none today) only move last_seq.
TRANSITIONS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("seat.held", None): ("free", "held"),
    ("seat.reserved", None): ("held", "reserved"),
    ("seat.released", "released"): ("held", "free"),
    ("seat.released", "expired"): ("held", "free"),
    ("seat.released", "cancelled"): ("reserved", "free"),
    ("seat.released", "unblocked"): ("blocked", "free"),
    ("seat.blocked", None): ("free", "blocked"),
}

# stats.updated at most this often per event: a sold-out rush changes an event thousands of
# times a second, and every browser on it would get every change.
PUBLISH_INTERVAL_S = 0.25


class StatsError(Exception):
    """A seat event the projection cannot apply (a seat the catalog does not know)."""


def stats_apply(*, envelopes: Iterable[Envelope]) -> set[int]:
    """Apply seat events to the event and section counts; returns the ids of changed events.

    Idempotent on its own: an envelope whose seq is not above its event's ``last_seq`` was
    applied already and is skipped. An event's rows are created from the catalog (every seat
    free) on its first envelope. The Redis hot copy is rewritten after the transaction commits.
    """
    by_event: dict[int, list[Envelope]] = defaultdict(list)
    for envelope in envelopes:
        by_event[envelope.event_id].append(envelope)
    changed: set[int] = set()
    with transaction.atomic():
        # One order of row locks for every caller, so two never wait for each other in a cycle.
        for event_id in sorted(by_event):
            if _event_apply(event_id, by_event[event_id]):
                changed.add(event_id)
        if changed:
            ids = sorted(changed)
            transaction.on_commit(lambda: stats_cache_refresh(event_ids=ids))
    return changed


def stats_cache_refresh(*, event_ids: Iterable[int]) -> None:
    """Copy the committed stats of ``event_ids`` to Redis (after commit: readers never see a
    count that a rollback took back)."""
    for event_id in event_ids:
        body = stats_body_from_db(event_id=event_id)
        if body is not None:
            stats_cache_set(body=body)


def _event_apply(event_id: int, envelopes: list[Envelope]) -> bool:
    stats, sections = _rows_lock(event_id)
    seat_sections = _seat_sections(event_id)
    prices = event_seat_prices(event_id=event_id)
    touched: set[int] = set()
    applied = False
    for envelope in sorted(envelopes, key=lambda e: e.seq):
        if envelope.seq <= stats.last_seq:
            continue  # applied before
        stats.last_seq = envelope.seq
        applied = True
        reason = envelope.data.get("reason") if envelope.type == "seat.released" else None
        transition = TRANSITIONS.get((envelope.type, reason))
        if transition is None:
            log.info("stats: %s (reason %s) changes no seat state", envelope.type, reason)
            continue
        source, target = transition
        seats = envelope.data.get("seats") or []
        for index, seat in enumerate(seats):
            section_id = seat_sections.get(seat)
            if section_id is None:
                raise StatsError(f"event {event_id} has no seat {seat!r}")
            section = sections[section_id]
            touched.add(section_id)
            revenue = _revenue_delta(envelope, index, prices[seat])
            for row in (stats, section):
                setattr(row, source, getattr(row, source) - 1)
                setattr(row, target, getattr(row, target) + 1)
                row.revenue += revenue
        if any(getattr(stats, name) < 0 for name in ("free", "held", "reserved", "blocked")):
            # Only a stream that skipped events gets here; reconcile reports it, a rebuild
            # from the whole topic repairs it.
            log.warning("stats: event %s has a negative count at seq %s", event_id, envelope.seq)
    if applied:
        stats.save()
        now = timezone.now()
        for section_id in touched:
            sections[section_id].updated_at = now  # bulk_update skips auto_now
        SectionStats.objects.bulk_update(
            [sections[s] for s in sorted(touched)],
            ["free", "held", "reserved", "blocked", "revenue", "updated_at"],
        )
    return applied


def _revenue_delta(envelope: Envelope, index: int, catalog_price: Decimal) -> Decimal:
    if envelope.type == "seat.reserved":
        # What the buyer was charged, as the write side recorded it at that moment.
        cents = envelope.data.get("price_cents")
        if isinstance(cents, list) and index < len(cents):
            return Decimal(cents[index]) / 100
        if isinstance(cents, int):
            return Decimal(cents) / 100
        return catalog_price
    if envelope.type == "seat.released" and envelope.data.get("reason") == "cancelled":
        # The cancel event carries no price; a category's price is fixed while on sale.
        return -catalog_price
    return Decimal(0)


def _rows_lock(event_id: int) -> tuple[EventStats, dict[int, SectionStats]]:
    """The event's rows, locked; created all free from the catalog on the first envelope."""
    stats = EventStats.objects.select_for_update().filter(event_id=event_id).first()
    if stats is None:
        places, _ = event_seat_places(event_id=event_id)
        per_section = Counter(place.section_id for place in places)
        # ignore_conflicts: a second projector initialising at the same moment creates the
        # same all-free rows; whichever loses keeps the winner's.
        SectionStats.objects.bulk_create(
            [
                SectionStats(event_id=event_id, section_id=s, total=n, free=n)
                for s, n in ((s, per_section[s]) for s in sorted(event_sections(event_id=event_id)))
            ],
            ignore_conflicts=True,
        )
        EventStats.objects.bulk_create(
            [EventStats(event_id=event_id, total=len(places), free=len(places))],
            ignore_conflicts=True,
        )
        stats = EventStats.objects.select_for_update().get(event_id=event_id)
    sections = {
        row.section_id: row
        for row in SectionStats.objects.select_for_update().filter(event_id=event_id)
    }
    return stats, sections


@lru_cache(maxsize=32)
def _seat_sections(event_id: int) -> dict[str, int]:
    # Cached like event_seat_places: the seats of an event on sale cannot change.
    places, _ = event_seat_places(event_id=event_id)
    return {place.key: place.section_id for place in places}


# --- stats.updated ---------------------------------------------------------------------


class StatsPublisher:
    """Publishes ``stats.updated`` after commit, coalesced per event.

    ``mark`` the events a committed transaction changed; ``flush`` (called often: after every
    poll, idle ones included) publishes each marked event whose last message is at least
    ``interval_s`` old. The body is read from Postgres at that moment, so the last message of
    a burst carries the final counts; an event changed again meanwhile stays marked.
    """

    def __init__(
        self,
        *,
        interval_s: float = PUBLISH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        producer_factory: Callable[[], KafkaProducer] = kafka_producer_create,
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.producer_factory = producer_factory
        self.dirty: set[int] = set()
        self.sent_at: dict[int, float] = {}
        self._producer: KafkaProducer | None = None
        self._topic_ready: str | None = None

    def mark(self, event_ids: Iterable[int]) -> None:
        self.dirty.update(event_ids)

    def flush(self, *, force: bool = False) -> int:
        """Publish what is due (everything marked when ``force``); returns how many.

        A failure is logged and the events stay marked for the next call: the consumer's loop
        must go on (its offsets are already committed, the stats already in Postgres).
        """
        now = self.clock()
        due = sorted(
            e
            for e in self.dirty
            if force or now - self.sent_at.get(e, -math.inf) >= self.interval_s
        )
        if not due:
            return 0
        try:
            sent = self._publish(due)
        except (KafkaError, DatabaseError) as exc:
            log.warning("stats: stats.updated for %s not published (%r); retried", due, exc)
            return 0
        for event_id in sent:
            self.dirty.discard(event_id)
            self.sent_at[event_id] = now
        # Forget windows long past: they no longer hold anything back.
        self.sent_at = {e: t for e, t in self.sent_at.items() if now - t < self.interval_s}
        return len(sent)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    def _publish(self, event_ids: list[int]) -> list[int]:
        topic = settings.KAFKA_TOPIC_STATS_EVENTS
        if self._topic_ready != topic:
            topics_ensure([topic])
            self._topic_ready = topic
        if self._producer is None:
            self._producer = self.producer_factory()
        futures = []
        for event_id in event_ids:
            body = stats_body_from_db(event_id=event_id)
            if body is None:
                continue  # rows deleted meanwhile (a rebuild): nothing to say
            futures.append(
                self._producer.send(
                    topic, key=event_id, value=envelope_encode(stats_envelope(body))
                )
            )
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)  # raises the KafkaError of a failed send
        # Sent, or nothing to send: either way no longer due.
        return event_ids


def stats_envelope(body: dict) -> dict:
    """``stats.updated`` as an envelope (docs/architecture.md, Events on Kafka); seq = the
    seat seq the stats reflect."""
    return {
        "id": str(uuid.uuid4()),
        "type": "stats.updated",
        "event_id": body["event_id"],
        "seq": body["seq"],
        "occurred_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "data": body,
    }
