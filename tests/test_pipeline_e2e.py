"""The whole pipeline, end to end: HTTP commands → Redis → outbox relay → Kafka → projection
workers → Postgres, checked against Redis, which decides.

Real Redis, broker and Postgres. Buyers and staff drive the write side only through the HTTP
API; the relay runs once per step (``relay`` in apps/core/tests/pipeline.py); each registered
projection worker runs in a thread, in a consumer group of this test's own, until its cursor
reaches the event's seq in Redis. Then every projection must agree with Redis exactly:

- persistence: every seat reserved in Redis has exactly one active ReservedSeat, of the
  reservation Redis names; every reservation Redis knows has one row with its seats, and
  the cancelled ones are cancelled with no active seat left;
- the seat map API shows every seat in the state Redis has;
- stats (when an app registers a ``stats`` worker): the counts of /api/stats/event/{id}.

A worker "killed" between its database commit and its offset commit gets the same batch
again when restarted in its group; the result must still be exact.
"""

import json
import threading
import traceback
import uuid
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.core.kafka import topics_ensure
from apps.core.models import ProjectionCursor
from apps.core.redis import redis_client_get
from apps.core.tests.pipeline import WAIT_S, relay, wait_until
from apps.core.workers import KafkaWorker, worker_class_get
from apps.persistence.models import Reservation, ReservedSeat
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.redis.inventory import Snapshot
from apps.reservations.redis.keys import event_keys
from apps.reservations.selectors import (
    event_seat_places,
    event_sections,
    inventory_snapshot_get,
)
from apps.reservations.tests.factories import EventFactory, SectionFactory
from apps.stats.reconcile import event_reconcile

# Workers run in threads with their own connections: they must see and commit real
# transactions, so the test cannot run inside one.
pytestmark = pytest.mark.django_db(transaction=True)

STATE_OF_CODE = {"f": "free", "h": "held", "m": "held", "r": "reserved", "b": "blocked"}


# --- fixtures and plumbing ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _topic(settings):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS])


@pytest.fixture
def event() -> Event:
    """On sale: section A (3 rows × 5 seats) and section B (1 row × 4 seats, dearer)."""
    a = SectionFactory(name="A")
    b = SectionFactory(name="B", venue=a.venue, category__price="80.00")
    services.section_seats_generate(section=a, grid=SeatGrid(rows=3, seats_per_row=5))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=1, seats_per_row=4))
    event = EventFactory(venue=a.venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=6)
    # Ids are not reused across tests, but the caches are per process: start clean.
    event_seat_places.cache_clear()
    event_sections.cache_clear()
    services.event_open_sale(event=event)
    return event


@pytest.fixture
def staff() -> Client:
    admin = get_user_model().objects.create_superuser(
        username=f"boxoffice-{uuid.uuid4().hex[:6]}", password="x", email="bo@example.com"
    )
    client = Client()
    client.force_login(admin)
    return client


def redis_seq(event: Event) -> int:
    return inventory_snapshot_get(event_id=event.pk).seq


def cursor_seq(name: str, event: Event) -> int:
    row = ProjectionCursor.objects.filter(consumer=name, event_id=event.pk).first()
    return -1 if row is None else row.last_seq


class Running:
    """A registered worker in a thread, in ``group`` (a fresh one by default)."""

    def __init__(self, worker: KafkaWorker) -> None:
        self.worker = worker
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def of(cls, name: str, group: str | None = None) -> "Running":
        worker_cls = worker_class_get(name)
        return cls(worker_cls(group_id=group or f"e2e-{name}-{uuid.uuid4().hex[:10]}"))

    def _run(self) -> None:
        try:
            self.worker.run(self.stop)
        except BaseException as exc:  # handed to the test
            self.error = exc

    @property
    def crash(self) -> str:
        """How the worker died, traceback included ("" while it has not)."""
        return "" if self.error is None else "".join(traceback.format_exception(self.error))

    def start(self) -> "Running":
        self.thread.start()
        return self

    def caught_up(self, event: Event) -> None:
        """Wait until the worker applied everything up to Redis' seq (or died)."""
        target = redis_seq(event)
        wait_until(
            lambda: self.error is not None or cursor_seq(self.worker.name, event) >= target,
            f"worker {self.worker.name} to reach seq {target}",
        )
        assert self.error is None, self.crash

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), f"worker {self.worker.name} did not stop"
        assert self.error is None, self.crash


@dataclass
class Buyer:
    """One browser session on the HTTP API."""

    event: Event
    client: Client = field(default_factory=Client)
    tokens: list[str] = field(default_factory=list)

    def hold(self, seats: list[str] | None = None, best: int | None = None) -> dict:
        body = {"seats": seats} if seats is not None else {"best": {"count": best}}
        response = self.client.post(
            f"/api/events/{self.event.pk}/holds", body, content_type="application/json"
        )
        assert response.status_code == 201, response.content
        self.tokens.append(response.json()["hold_token"])
        return response.json()

    def release(self, token: str, seats: list[str] | None = None) -> dict:
        body = {"seats": seats} if seats else {}
        response = self.client.post(
            f"/api/holds/{token}/release", body, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    def reserve(self, token: str) -> dict:
        response = self.client.post(f"/api/holds/{token}/reserve")
        assert response.status_code == 201, response.content
        return response.json()

    def buy(self, seats: list[str] | None = None, best: int | None = None) -> dict:
        return self.reserve(self.hold(seats, best)["hold_token"])


def staff_block(staff: Client, event: Event, seats: list[str]) -> None:
    response = staff.post(
        f"/api/events/{event.pk}/block", {"seats": seats}, content_type="application/json"
    )
    assert response.status_code == 200, response.content


def staff_cancel(staff: Client, event: Event, reservation_id: str) -> None:
    response = staff.post(f"/api/events/{event.pk}/reservations/{reservation_id}/cancel")
    assert response.status_code == 200, response.content


# --- what "exact" means ------------------------------------------------------------------


def redis_reservations(event: Event) -> dict[str, dict]:
    """Reservation id → {holder, seats, status} as the write side keeps them.

    Read straight from the write side's hash: a test may look where apps must not.
    """
    raw = redis_client_get().hgetall(event_keys(event.pk).reservations)
    return {rid: json.loads(value) for rid, value in raw.items()}


def assert_persistence_matches_redis(event: Event) -> None:
    snapshot = inventory_snapshot_get(event_id=event.pk)
    reserved_in_redis = {}
    for seat in snapshot.state:
        state, ref = snapshot.seat_state(seat)
        if state == "reserved":
            reserved_in_redis[seat] = ref
    active = list(
        ReservedSeat.objects.filter(event=event, active=True).values_list(
            "seat_key", "reservation_id"
        )
    )
    assert len(active) == len({seat for seat, _ in active}), "a seat has two active rows"
    assert {seat: str(rid) for seat, rid in active} == reserved_in_redis

    reservations = redis_reservations(event)
    rows = {str(r.id): r for r in Reservation.objects.filter(event=event)}
    assert set(rows) == set(reservations)
    for rid, written in reservations.items():
        row = rows[rid]
        seats = ReservedSeat.objects.filter(reservation=row)
        assert sorted(s.seat_key for s in seats) == sorted(written["seats"]), rid
        assert row.holder == written["holder"], rid
        if written["status"] == "cancelled":
            assert row.status == Reservation.Status.CANCELLED, rid
            assert row.cancelled_at is not None, rid
            assert not seats.filter(active=True).exists(), rid
        else:
            assert row.status == Reservation.Status.RESERVED, rid
            assert seats.filter(active=True).count() == len(written["seats"]), rid
            assert row.total == sum(s.price for s in seats), rid


def seat_map_states(client: Client, event: Event) -> tuple[int, dict[str, str]]:
    response = client.get(f"/api/events/{event.pk}/seats", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    states = {}
    for section in body["sections"]:
        for row in section["rows"]:
            assert len(row["numbers"]) == len(row["states"])
            for number, code in zip(row["numbers"], row["states"], strict=True):
                states[f"{section['name']}-{row['row']}-{number}"] = code
    return body["seq"], states


def assert_seat_map_matches_redis(event: Event, buyers: list[Buyer]) -> None:
    snapshot = inventory_snapshot_get(event_id=event.pk)
    seat_count = event.venue.seats.count()
    seq, codes = seat_map_states(Client(), event)  # a visitor: no hold is "mine"
    assert seq == snapshot.seq
    assert len(codes) == seat_count
    assert "m" not in codes.values()
    assert {seat: STATE_OF_CODE[c] for seat, c in codes.items()} == {
        seat: snapshot.seat_state(seat)[0] for seat in codes
    }
    for buyer in buyers:  # each buyer sees their own live holds, and only those, as "m"
        _, mine = seat_map_states(buyer.client, event)
        holder = _holder_of(buyer, snapshot)
        expected = {
            seat
            for seat in snapshot.state
            if snapshot.seat_state(seat)[0] == "held"
            and snapshot.holds[snapshot.seat_state(seat)[1]]["holder"] == holder
        }
        assert {seat for seat, c in mine.items() if c == "m"} == expected


def _holder_of(buyer: Buyer, snapshot: Snapshot) -> str | None:
    """The buyer id the write side knows this browser by (from its live holds)."""
    for token in buyer.tokens:
        if token in snapshot.holds:
            return snapshot.holds[token]["holder"]
    return None


def assert_stats_match_redis(event: Event) -> None:
    snapshot = inventory_snapshot_get(event_id=event.pk)
    counts = {"free": 0, "held": 0, "reserved": 0, "blocked": 0}
    for seat in event.venue.seats.values_list("key", flat=True):
        counts[snapshot.seat_state(seat)[0]] += 1
    response = Client().get(f"/api/stats/event/{event.pk}", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["event_id"] == event.pk
    assert body["seq"] == snapshot.seq
    assert body["total"] == sum(counts.values())
    assert {k: body[k] for k in counts} == counts


# --- the scenario ------------------------------------------------------------------------


def free_seats(event: Event) -> list[str]:
    snapshot = inventory_snapshot_get(event_id=event.pk)
    keys = event.venue.seats.order_by("key").values_list("key", flat=True)
    return [seat for seat in keys if snapshot.seat_state(seat)[0] == "free"]


def traffic(event: Event, staff: Client, buyers: list[Buyer]) -> dict[str, str]:
    """Holds, partial and full releases, reserves, best available, a staff block and a staff
    cancel, and a resale of a cancelled seat; returns name → reservation id."""
    alice, bob, carol = buyers
    sold = {}
    sold["alice"] = alice.buy(["A-1-1", "A-1-2"])["reservation_id"]
    hold = bob.hold(["A-2-1", "A-2-2", "A-2-3"])
    assert bob.release(hold["hold_token"], ["A-2-3"])["seats"] == ["A-2-3"]
    sold["bob"] = bob.reserve(hold["hold_token"])["reservation_id"]
    hold = carol.hold(["B-1-1", "B-1-2"])
    carol.release(hold["hold_token"])
    sold["carol"] = carol.buy(["B-1-3", "B-1-4"])["reservation_id"]
    sold["best"] = carol.buy(best=2)["reservation_id"]
    staff_block(staff, event, ["A-1-5", "A-3-5"])
    staff_cancel(staff, event, sold["bob"])
    # The cancelled seats are on sale again: a second live sale of the same seat key.
    sold["resale"] = alice.buy(["A-2-1"])["reservation_id"]
    alice.hold(["A-3-1"])  # left held: the seat map shows it as alice's own
    bob.hold(["A-3-2", "A-3-3"])
    return sold


def run_until_caught_up(event: Event, names: list[str]) -> None:
    running = [Running.of(name).start() for name in names]
    try:
        for worker in running:
            worker.caught_up(event)
    finally:
        for worker in running:
            worker.finish()


def test_commands_through_the_api_end_in_projections_that_match_redis(event, staff):
    buyers = [Buyer(event) for _ in range(3)]
    sold = traffic(event, staff, buyers)
    assert relay() == redis_seq(event)  # one message per seq since the sale opened

    run_until_caught_up(event, ["persistence"])

    assert_persistence_matches_redis(event)
    statuses = dict(Reservation.objects.filter(event=event).values_list("id", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        rid: "cancelled" if name == "bob" else "reserved" for name, rid in sold.items()
    }
    assert_seat_map_matches_redis(event, buyers)


def test_the_stats_projection_matches_redis_and_reconcile_passes(event, staff):
    buyers = [Buyer(event) for _ in range(3)]
    traffic(event, staff, buyers)
    relay()

    run_until_caught_up(event, ["persistence", "stats"])

    assert_stats_match_redis(event)
    assert event_reconcile(event_id=event.pk) == []
    # Every command after the first projection moves the counts again.
    free = free_seats(event)
    buyers[0].buy(free[:2])
    staff_block(staff, event, free[2:3])
    relay()
    run_until_caught_up(event, ["persistence", "stats"])
    assert_stats_match_redis(event)
    assert event_reconcile(event_id=event.pk) == []


class Killed(Exception):
    """The process died between its database commit and its offset commit."""


def test_a_worker_killed_before_its_offset_commit_is_exact_after_a_restart(event, staff):
    buyers = [Buyer(event) for _ in range(3)]
    traffic(event, staff, buyers)
    relay()
    group = f"e2e-persistence-{uuid.uuid4().hex[:10]}"

    first = Running.of("persistence", group)
    real_commit = first.worker.offsets_commit
    kills = []

    def offsets_commit_then_die(consumer, offsets):  # type: ignore[no-untyped-def]
        if not kills:
            kills.append(offsets)
            raise Killed()
        real_commit(consumer, offsets)

    first.worker.offsets_commit = offsets_commit_then_die  # type: ignore[method-assign]
    first.start()
    first.thread.join(WAIT_S)
    assert not first.thread.is_alive()
    assert isinstance(first.error, Killed)
    # The batch's transaction committed before the "crash": the rows are there already.
    applied = cursor_seq("persistence", event)
    assert applied > 0
    assert Reservation.objects.filter(event=event).exists()

    # More happens while the worker is down; then a new copy joins the same group.
    alice, bob, _ = buyers
    free = free_seats(event)
    reservation = alice.buy(free[:1])["reservation_id"]
    staff_cancel(staff, event, reservation)
    bob.buy(free[1:3])
    relay()

    second = Running.of("persistence", group)
    results = []
    real_process = second.worker.batch_process

    def batch_process_recorded(records):  # type: ignore[no-untyped-def]
        result = real_process(records)
        results.append(result)
        return result

    second.worker.batch_process = batch_process_recorded  # type: ignore[method-assign]
    second.start()
    try:
        second.caught_up(event)
    finally:
        second.finish()

    # No offset was committed, so the new copy got the killed batch again and skipped it.
    assert sum(r.duplicates for r in results) >= applied
    assert sum(r.dead_letters for r in results) == 0
    assert_persistence_matches_redis(event)
    assert Reservation.objects.get(pk=reservation).status == Reservation.Status.CANCELLED
