"""Writes of the stats projection: seat events → counts, the Redis hot copy, stats.updated;
and the counts rewritten from the write side's state when envelopes are lost for good
(``stats_repair``)."""

import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from kafka import KafkaProducer
from kafka.errors import KafkaError

from apps.core.envelopes import Envelope
from apps.core.kafka import envelope_encode, kafka_producer_create, topics_ensure
from apps.core.projections import Repair
from apps.reservations.models import Event, Seat, Section
from apps.reservations.redis.inventory import FullSnapshot
from apps.reservations.selectors import (
    catalog_cached,
    event_sections,
    inventory_snapshot_full_get,
)
from apps.stats.cache import stats_cache_set
from apps.stats.models import EventStats, SectionStats
from apps.stats.selectors import COUNT_FIELDS, stats_body_from_db

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
STATES = ("free", "held", "reserved", "blocked")

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
    """Count the batch's moves between states per section in Python, then write them with two
    statements (the event's row, the touched sections' rows), whatever the batch's size."""
    last_seq = _event_lock(event_id)
    catalog = _seat_catalog(event_id)
    moved: Counter[tuple[int, str, str]] = Counter()  # (section id, from, to) → seats
    revenue_cents: Counter[int] = Counter()  # section id → change
    applied_seq = last_seq
    for envelope in sorted(envelopes, key=lambda e: e.seq):
        if envelope.seq <= applied_seq:
            continue  # applied before
        applied_seq = envelope.seq
        reason = envelope.data.get("reason") if envelope.type == "seat.released" else None
        transition = TRANSITIONS.get((envelope.type, reason))
        if transition is None:
            log.info("stats: %s (reason %s) changes no seat state", envelope.type, reason)
            continue
        source, target = transition
        for index, seat in enumerate(envelope.data.get("seats") or []):
            try:
                section_id, catalog_cents = catalog[seat]
            except KeyError:
                raise StatsError(f"event {event_id} has no seat {seat!r}") from None
            moved[section_id, source, target] += 1
            if target == "reserved":
                revenue_cents[section_id] += _charged_cents(envelope, index, catalog_cents)
            elif source == "reserved":
                # A cancel carries no price; a category's price is fixed while on sale.
                revenue_cents[section_id] -= catalog_cents
    if applied_seq == last_seq:
        return False
    counts: dict[int, Counter[str]] = defaultdict(Counter)  # section id → state → change
    for (section_id, source, target), seats in moved.items():
        counts[section_id][source] -= seats
        counts[section_id][target] += seats
    _counts_add(event_id, applied_seq, counts, revenue_cents)
    return True


def _charged_cents(envelope: Envelope, index: int, catalog_cents: int) -> int:
    """What the buyer of a ``seat.reserved``'s seat was charged, as the write side recorded it
    at that moment."""
    cents = envelope.data.get("price_cents")
    if isinstance(cents, list) and index < len(cents):
        return cents[index]
    if isinstance(cents, int):
        return cents
    return catalog_cents


# One array per column (unnest): one statement for every touched section of the batch.
_SECTIONS_ADD = f"""
UPDATE {SectionStats._meta.db_table} s
SET free = s.free + d.free, held = s.held + d.held, reserved = s.reserved + d.reserved,
    blocked = s.blocked + d.blocked, revenue = s.revenue + d.revenue_cents::numeric / 100,
    updated_at = %s
FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::int[], %s::int[], %s::bigint[])
    AS d(section_id, free, held, reserved, blocked, revenue_cents)
WHERE s.event_id = %s AND s.section_id = d.section_id
"""  # noqa: S608 - the table name comes from the model, values are parameters

_EVENT_ADD = f"""
UPDATE {EventStats._meta.db_table}
SET free = free + %s, held = held + %s, reserved = reserved + %s, blocked = blocked + %s,
    revenue = revenue + %s::numeric / 100, last_seq = %s, updated_at = %s
WHERE event_id = %s
RETURNING free, held, reserved, blocked
"""  # noqa: S608 - the table name comes from the model, values are parameters


def _counts_add(
    event_id: int,
    last_seq: int,
    counts: dict[int, Counter[str]],
    revenue_cents: Counter[int],
) -> None:
    sections = sorted(counts)
    columns = [[counts[s][name] for s in sections] for name in STATES]
    total = [sum(column) for column in columns]
    now = timezone.now()
    with connection.cursor() as cursor:
        if sections:  # none when the batch changed no seat state (seq only)
            cursor.execute(
                _SECTIONS_ADD,
                [now, sections, *columns, [revenue_cents[s] for s in sections], event_id],
            )
        cursor.execute(_EVENT_ADD, [*total, revenue_cents.total(), last_seq, now, event_id])
        if any(value < 0 for value in cursor.fetchone()):
            # Only a stream that skipped events gets here; reconcile reports it, a rebuild
            # from the whole topic repairs it.
            log.warning("stats: event %s has a negative count at seq %s", event_id, last_seq)


def _event_lock(event_id: int) -> int:
    """The event's ``last_seq``, its row locked; the event's rows are created all free from
    the catalog on its first envelope.

    Every writer of an event's stats takes this lock first, so its section rows need none of
    their own.
    """
    rows = EventStats.objects.select_for_update().filter(event_id=event_id)
    last_seq = rows.values_list("last_seq", flat=True).first()
    if last_seq is None:
        seats = _seat_catalog(event_id)
        per_section = Counter(section_id for section_id, _ in seats.values())
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
            [EventStats(event_id=event_id, total=len(seats), free=len(seats))],
            ignore_conflicts=True,
        )
        last_seq = rows.values_list("last_seq", flat=True).get()
    return last_seq


@catalog_cached
def _seat_catalog(event_id: int) -> dict[str, tuple[int, int]]:
    """Seat key → (section id, its category's price in cents), read once per event and
    process: the seats of an event on sale cannot change, nor (see the cancel's revenue) its
    prices."""
    event = Event.objects.get(pk=event_id)
    # Prices per section, then plain (key, section) rows: a stadium's 50,000 seats read
    # without a join or a Decimal each, on the first batch of every worker (re)start.
    cents = {
        section_id: int(price * 100)
        for section_id, price in Section.objects.filter(venue=event.venue_id).values_list(
            "id", "category__price"
        )
    }
    return {
        key: (section_id, cents[section_id])
        for key, section_id in Seat.objects.filter(venue=event.venue_id).values_list(
            "key", "section_id"
        )
    }


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


# --- the stats a state adds up to: reconcile and repair (docs/architecture.md, Repair) -----

# What a seat's value in the write side's ``state`` hash makes it (absent: free).
_STATE_OF = {"h": "held", "r": "reserved", "b": "blocked"}

# The counts of one scope: COUNT_FIELDS and "revenue_cents". Scope None is the whole event,
# any other the section of that id.
Counts = dict[int | None, Counter[str]]


def snapshot_counts(*, event_id: int, snapshot: FullSnapshot) -> Counts:
    """The stats the event's seat events up to ``snapshot.seq`` add up to.

    A seat counts in the state Redis has it in: a hold past its expiry that the sweep has
    not ended yet is still held, as it is in the event stream until its seat.released. A
    reserved seat adds the price Redis holds for it, which is what its seat.reserved
    carried (``_charged_cents``) unless a category's price was changed behind the
    platform's back since. Every section of the venue has a scope, seats or not, as
    ``_event_lock`` creates them.
    """
    catalog = _seat_catalog(event_id)
    counts: Counts = {None: Counter()}
    counts.update((section_id, Counter()) for section_id in event_sections(event_id=event_id))
    for section_id, _ in catalog.values():
        for scope in (None, section_id):
            counts.setdefault(scope, Counter()).update(("total", "free"))
    for seat, value in snapshot.state.items():
        if seat not in catalog:
            continue  # impossible while the venue's layout is frozen (services.py)
        section_id, catalog_cents = catalog[seat]
        state = _STATE_OF[value[0]]
        for scope in (None, section_id):
            counts[scope]["free"] -= 1
            counts[scope][state] += 1
            if state == "reserved":
                counts[scope]["revenue_cents"] += snapshot.prices_cents.get(seat, catalog_cents)
    return counts


def stats_differences(*, event_id: int, seq: int, expected: Counts) -> list[str]:
    """How the event's stats rows differ from ``expected`` (snapshot_counts) at ``seq``;
    [] when they agree. No rows at seq 0 agree: an event nothing happened to is all free."""
    stats = EventStats.objects.filter(event_id=event_id).first()
    if stats is None:
        return [f"stats: none yet, inventory at seq {seq}"] if seq else []
    problems = []
    if stats.last_seq != seq:
        problems.append(f"stats at seq {stats.last_seq}, inventory at seq {seq}")
    rows: dict[int | None, EventStats | SectionStats] = {None: stats}
    rows.update({row.section_id: row for row in SectionStats.objects.filter(event_id=event_id)})
    names = event_sections(event_id=event_id)
    for scope in sorted(expected.keys() | rows.keys(), key=lambda k: (k is not None, k or 0)):
        label = "event" if scope is None else f"section {names.get(scope, scope)}"
        row = rows.get(scope)
        if row is None:
            problems.append(f"stats: {label} has no row")
            continue
        want = _row_values(expected.get(scope, Counter()))
        for name, value in want.items():
            if getattr(row, name) != value:
                problems.append(
                    f"stats: {label} {name} is {getattr(row, name)}, Redis says {value}"
                )
    return problems


@transaction.atomic
def stats_repair(*, event_id: int) -> Repair:
    """Rewrite the event's stats rows from the write side's state, read once; returns its
    seq and what differed (stats_differences), [] when nothing did.

    For when the envelopes are lost for good (docs/architecture.md, Repair): the counts are
    what the state adds up to (snapshot_counts), rows missing are created, and the event's
    ``last_seq`` becomes the state's seq, so stats_apply skips the envelopes up to it and
    applies the later ones. As after stats_apply, the hot copy is rewritten once this
    commits; ``stats.updated`` is the caller's to publish (the stats worker marks the event
    for its publisher when the repair changed anything).

    Idempotent. Runs under the caller's lock of the stats cursor of the event
    (ProjectionWorker.projection_repair, or a worker's batch), which it does not touch.
    """
    # Every writer of an event's stats takes its row lock first (_event_lock). A missing
    # row is created below; the caller's cursor lock keeps the worker out meanwhile.
    list(EventStats.objects.select_for_update().filter(event_id=event_id).values_list("pk"))
    snapshot = inventory_snapshot_full_get(event_id=event_id)
    expected = snapshot_counts(event_id=event_id, snapshot=snapshot)
    changes = stats_differences(event_id=event_id, seq=snapshot.seq, expected=expected)
    if changes:
        _stats_write(event_id, snapshot.seq, expected)
        transaction.on_commit(lambda: stats_cache_refresh(event_ids=[event_id]))
    return Repair(seq=snapshot.seq, changes=changes)


def _row_values(counts: Counter[str]) -> dict[str, int | Decimal]:
    """A stats row's columns for one scope's counts."""
    values: dict[str, int | Decimal] = {name: counts[name] for name in COUNT_FIELDS}
    values["revenue"] = Decimal(counts["revenue_cents"]).scaleb(-2)
    return values


def _stats_write(event_id: int, seq: int, expected: Counts) -> None:
    EventStats.objects.update_or_create(
        event_id=event_id, defaults={**_row_values(expected[None]), "last_seq": seq}
    )
    # A row of a section the venue no longer has (none can be: its layout is frozen) is
    # zeroed, as stats_differences expects.
    sections = set(expected) | set(
        SectionStats.objects.filter(event_id=event_id).values_list("section_id", flat=True)
    )
    for section_id in sorted(s for s in sections if s is not None):
        SectionStats.objects.update_or_create(
            event_id=event_id,
            section_id=section_id,
            defaults=_row_values(expected.get(section_id, Counter())),
        )
