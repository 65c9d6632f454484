"""Two members in each projection's consumer group share the partitions, and rebalances under
load neither lose nor double anything (docs/architecture.md, "Several workers in a group").

Six events are on sale at once, one on each partition of the seat topic (the key is the
event id), and buyers buy in all of them through the HTTP API the whole time. Against a
broker of the test's own (the embedded one), with the relay in a thread:

1. persistence and stats run one member each;
2. a second member joins each group: a rebalance under load, after which the two members
   own three partitions each and both apply batches;
3. one member of each group goes, the hard way:
   - persistence's first member is killed between its batch's database commit and its
     offset commit, and leaves no word (as ``kill -9``: the group waits out its session
     timeout). The survivor gets the killed batch again;
   - stats' first member stalls inside a batch, holding its cursors' locks, until the group
     gave up on it (its max poll interval) and the survivor, now owning its partitions, is
     applying the same envelopes: the survivor waits on the locks. Then the stalled member
     commits and stops; its offset commit is refused. Stats have no unique constraint to
     refuse a double count: only the cursors keep it exact.

Once everything caught up: every reservation that answered 201 is persisted once with its
seats, and there are as many rows as Redis has reservations; the stats equal the seat
snapshot and ``reconcile`` is clean for every event; nothing was dead-lettered (applied
twice, a reservation would fail its unique constraint), and Postgres saw no deadlock.
"""

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
from django.db import connection

from apps.core.kafka import TOPIC_PARTITIONS, topics_ensure
from apps.core.tests.pipeline import (
    RelayThread,
    event_partition,
    events_on_every_partition,
    topic_records,
    wait_until,
)
from apps.core.workers import BatchResult, worker_class_get
from apps.persistence.models import Reservation, ReservedSeat
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.selectors import event_seat_places, event_sections
from apps.reservations.tests.factories import SectionFactory
from tests.test_broker_loss import Buyers, assert_nothing_lost
from tests.test_pipeline_e2e import Killed, Running, cursor_seq, redis_reservations, redis_seq

pytestmark = pytest.mark.django_db(transaction=True)

PROJECTIONS = ("persistence", "stats")
ALL_PARTITIONS = set(range(TOPIC_PARTITIONS))
# The stalling member's: the group gives up on it after this long inside one batch.
STALL_MAX_POLL_INTERVAL_MS = 4_000


def partition_of(event_id: int) -> int:
    return event_partition(event_id, TOPIC_PARTITIONS)


@pytest.fixture
def events() -> list[Event]:
    """On sale: one event on each partition, 2,000 seats each in two sections of one venue,
    two seats per hold at most: enough that the buyers sell none out before the test is
    done (a projection's linger after each batch makes every phase longer)."""
    a = SectionFactory(name="A")
    b = SectionFactory(name="B", venue=a.venue, category__price="80.00")
    services.section_seats_generate(section=a, grid=SeatGrid(rows=40, seats_per_row=25))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=40, seats_per_row=25))
    event_seat_places.cache_clear()
    event_sections.cache_clear()
    return events_on_every_partition(a.venue, max_seats_per_hold=2)


class Member(Running):
    """A worker in a thread, in ``group``, that records what each of its batches did and
    can be made to die (``kill``) or stall (``stall_until``)."""

    def __init__(self, name: str, group: str, **kafka_config: object) -> None:
        super().__init__(worker_class_get(name)(group_id=group, **kafka_config))
        self.name = name
        self.batches: list[BatchResult] = []
        self.in_hand: frozenset[int] = frozenset()  # partitions of the batch being processed
        self.consumer = None
        self.kill = threading.Event()
        self.killed: BatchResult | None = None
        self._stall: Callable[[frozenset[int]], bool] | None = None
        self.stalled: int | None = None  # index in batches of the batch that stalled
        worker = self.worker
        real_create, real_process = worker._kafka_consumer_create, worker.batch_process
        real_commit, real_fresh = worker.offsets_commit, worker._fresh

        def consumer_create():  # type: ignore[no-untyped-def]
            self.consumer = real_create()
            return self.consumer

        def batch_process(records):  # type: ignore[no-untyped-def]
            self.in_hand = frozenset(r.partition for r in records)
            try:
                result = real_process(records)
            finally:
                self.in_hand = frozenset()
            self.batches.append(result)
            return result

        def fresh(decoded, cursors):  # type: ignore[no-untyped-def]
            # Inside the batch's transaction, its cursors locked.
            fresh, skipped = real_fresh(decoded, cursors)
            if fresh and self._stall is not None and self.stalled is None:
                self.stalled = len(self.batches)
                wait_until(lambda: self._stall(self.in_hand), "the stall's end", timeout=40)
                self.stop.set()  # commits this batch, then stops
            return fresh, skipped

        def offsets_commit(consumer, offsets):  # type: ignore[no-untyped-def]
            if self.kill.is_set() and self.batches[-1].applied:
                self.killed = self.batches[-1]
                # No LeaveGroup on close: the broker drops the member after its session
                # timeout only, as for a process that died.
                consumer._coordinator.maybe_leave_group = lambda *args, **kwargs: None
                raise Killed()
            real_commit(consumer, offsets)

        worker._kafka_consumer_create = consumer_create  # type: ignore[method-assign]
        worker.batch_process = batch_process  # type: ignore[method-assign]
        worker._fresh = fresh  # type: ignore[method-assign]
        worker.offsets_commit = offsets_commit  # type: ignore[method-assign]

    def stall_until(self, condition: Callable[[frozenset[int]], bool]) -> None:
        """The next batch with something to apply waits inside its transaction, its cursors
        locked, until ``condition(its partitions)``; then it commits and the member stops."""
        self._stall = condition

    def assigned(self) -> set[int]:
        """The partitions of the seat topic the member owns now."""
        if self.consumer is None or not self.thread.is_alive():
            return set()
        return {tp.partition for tp in self.consumer.assignment()}

    def applied_since(self, count: int) -> bool:
        """Whether a batch after the first ``count`` applied something."""
        return any(result.applied for result in self.batches[count:])

    def duplicates_since(self, count: int) -> int:
        return sum(result.duplicates for result in self.batches[count:])

    def stop_now(self) -> None:
        """Stop without checking how it ended (cleanup after a failure)."""
        self._stall = lambda _: True
        self.stop.set()
        self.thread.join(30)


def shared(members: list[Member]) -> bool:
    """Every partition owned, by exactly one of ``members``, each owning some."""
    owned = [m.assigned() for m in members]
    return (
        all(owned)
        and set().union(*owned) == ALL_PARTITIONS
        and sum(len(o) for o in owned) == TOPIC_PARTITIONS
    )


def each_applies_a_batch(members: list[Member], what: str) -> None:
    """Wait until every member applied a batch after this call."""
    counts = [len(m.batches) for m in members]
    wait_until(
        lambda: (
            all(m.applied_since(c) for m, c in zip(members, counts, strict=True))
            or any(m.error is not None for m in members)
        ),
        what,
        timeout=30,
    )
    for member in members:
        assert member.error is None, member.crash


def purchases(buyers: list[Buyers]) -> int:
    return sum(b.count() for b in buyers)


def more_purchases(buyers: list[Buyers], count: int, what: str) -> None:
    target = purchases(buyers) + count
    wait_until(
        lambda: purchases(buyers) >= target or any(b.errors for b in buyers), what, timeout=30
    )
    for b in buyers:
        assert not b.errors, b.errors


def deadlocks() -> int:
    """Deadlocks Postgres has detected in the test database so far."""
    with connection.cursor() as sql:
        sql.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return sql.fetchone()[0]


@contextmanager
def members_running(members: list[Member]) -> Iterator[None]:
    """Whatever happens in the block, no member thread outlives it."""
    try:
        yield
    finally:
        for member in members:
            if member.thread.is_alive():
                member.stop_now()


def test_two_members_per_group_share_the_partitions_through_rebalances_under_load(
    own_broker, events, settings
):
    started = time.monotonic()
    deadlocks_before = deadlocks()
    own_broker.start()
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])
    groups = {name: f"groups-{name}-{uuid.uuid4().hex[:8]}" for name in PROJECTIONS}
    first = {
        "persistence": Member("persistence", groups["persistence"]),
        "stats": Member("stats", groups["stats"], max_poll_interval_ms=STALL_MAX_POLL_INTERVAL_MS),
    }
    second = {name: Member(name, groups[name]) for name in PROJECTIONS}
    killed, stalled = first["persistence"], first["stats"]
    members = [*first.values(), *second.values()]
    buyers = [Buyers(event, threads=1) for event in events]
    timings: dict[str, float] = {}

    with RelayThread(), members_running(members):
        with ExitStack() as buying:
            for b in buyers:
                buying.enter_context(b.buying())

            # 1. One member per group.
            for member in first.values():
                member.start()
            wait_until(
                lambda: (
                    all(cursor_seq(n, e) > 0 for n in PROJECTIONS for e in events)
                    or any(m.error is not None for m in first.values())
                ),
                "one member per group to apply every event",
                timeout=30,
            )
            for member in first.values():
                assert member.assigned() == ALL_PARTITIONS, member.crash

            # 2. A second member joins each group, under load: they share the partitions.
            joined = time.monotonic()
            for member in second.values():
                member.start()
            for name in PROJECTIONS:
                wait_until(
                    lambda name=name: shared([first[name], second[name]]),
                    f"the two {name} members to share the partitions",
                    timeout=30,
                )
            timings["join"] = time.monotonic() - joined
            each_applies_a_batch(members, "both members of each group to apply a batch")

            # 3. Persistence's first member dies, stats' first stalls, then stops.
            left = time.monotonic()
            counts = {name: len(second[name].batches) for name in PROJECTIONS}
            survivor = second["stats"]
            stalled.stall_until(
                lambda partitions: (
                    survivor.assigned() == ALL_PARTITIONS and bool(survivor.in_hand & partitions)
                )
            )
            killed.kill.set()

            def taken_over() -> bool:
                for name in PROJECTIONS:
                    if name not in takeover and second[name].assigned() == ALL_PARTITIONS:
                        takeover[name] = time.monotonic() - left
                return len(takeover) == len(PROJECTIONS) or any(
                    m.error is not None for m in second.values()
                )

            takeover: dict[str, float] = {}
            wait_until(taken_over, "the second members to own every partition", timeout=40)
            for name in PROJECTIONS:
                first[name].thread.join(30)
                assert not first[name].thread.is_alive(), f"the first {name} member is alive"
                timings[f"{name} takeover"] = takeover[name]
            assert isinstance(killed.error, Killed), killed.crash
            assert stalled.error is None, stalled.crash
            each_applies_a_batch(list(second.values()), "the survivors to apply a batch")
            more_purchases(buyers, 20, "purchases after the rebalances")

        # Buyers stopped: everything catches up.
        targets = {event.pk: redis_seq(event) for event in events}
        wait_until(
            lambda: (
                all(cursor_seq(n, e) >= targets[e.pk] for n in PROJECTIONS for e in events)
                or any(m.error is not None for m in second.values())
            ),
            "the survivors to catch up",
            timeout=60,
        )
        for member in second.values():
            member.finish()

    # Each member of each group applied envelopes: the groups split the partitions.
    for member in members:
        assert member.applied_since(0), f"a {member.name} member applied nothing"
    # The killed batch was committed in Postgres, not in Kafka: it came again, and was skipped.
    assert killed.killed is not None and killed.killed.applied > 0
    assert second["persistence"].duplicates_since(counts["persistence"]) >= killed.killed.applied
    # So were the stalled batch's envelopes, which the survivor was given while they were
    # being applied: it waited for the cursors, then skipped them.
    assert stalled.stalled is not None
    stalled_batch = stalled.batches[stalled.stalled]
    assert stalled_batch.applied > 0
    assert second["stats"].duplicates_since(counts["stats"]) >= stalled_batch.applied
    # Nothing refused (a reservation applied twice fails its unique constraint), no deadlock.
    assert sum(r.dead_letters for m in members for r in m.batches) == 0
    assert deadlocks() == deadlocks_before

    # Every event's envelopes on one partition, the six events on six partitions.
    partitions: dict[int, set[int]] = {}
    for record in topic_records(settings.KAFKA_TOPIC_SEAT_EVENTS):
        partitions.setdefault(int(record.key), set()).add(record.partition)
    assert partitions == {event.pk: {partition_of(event.pk)} for event in events}
    assert len({p for ps in partitions.values() for p in ps}) >= 2

    # Every reservation that answered 201 persisted once, the stats exact, reconcile clean.
    for b in buyers:
        assert b.sold, f"nothing sold in event {b.event.pk}"
        assert_nothing_lost(b.event, b.sold)
        known = redis_reservations(b.event)
        assert Reservation.objects.filter(event=b.event).count() == len(known)
        seats = sum(len(r["seats"]) for r in known.values())
        assert ReservedSeat.objects.filter(event=b.event).count() == seats
    timings["total"] = time.monotonic() - started
    print(f"{purchases(buyers)} reservations in {len(events)} events;", timings)
