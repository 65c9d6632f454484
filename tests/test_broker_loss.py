"""No confirmed reservation is ever lost, whatever happens to the broker (docs/architecture.md,
"Gaps and repair").

Buyers hold and reserve through the HTTP API while the relay, persistence, stats and the
gateway's bridge run in threads against a broker of the test's own. The broker is killed
(``kill -9``) and started again empty on the same port (the embedded broker keeps its log in
memory), once with the consumers running and once with them stopped and behind. Afterwards
every reservation that got a 201 is in Postgres with its seats, the stats equal the seat
snapshot, ``reconcile`` finds nothing, and no worker died.
"""

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client

from apps.core.kafka import topics_ensure
from apps.core.tests.brokers import TansuBroker
from apps.core.tests.pipeline import RelayThread, wait_until
from apps.persistence.models import ReservedSeat
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.selectors import event_index_problems, event_seat_places, event_sections
from apps.reservations.tests.factories import EventFactory, SectionFactory
from apps.stats.reconcile import event_reconcile
from tests.test_pipeline_e2e import (
    Running,
    assert_persistence_matches_redis,
    assert_stats_match_redis,
    cursor_seq,
    redis_seq,
)

pytestmark = pytest.mark.django_db(transaction=True)

PROJECTIONS = ("persistence", "stats")
ADDRESSES = (f"10.{a}.{b}.{c}" for a, b, c in itertools.product(range(256), repeat=3))


@pytest.fixture
def event() -> Event:
    """On sale: 3,000 seats in two sections (the buyers must not sell out before the
    test is done with them), two seats per hold at most."""
    a = SectionFactory(name="A")
    b = SectionFactory(name="B", venue=a.venue, category__price="80.00")
    services.section_seats_generate(section=a, grid=SeatGrid(rows=60, seats_per_row=25))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=60, seats_per_row=25))
    event = EventFactory(venue=a.venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=2)
    event_seat_places.cache_clear()
    event_sections.cache_clear()
    services.event_open_sale(event=event)
    return event


class Buyers:
    """Buyers in threads, each purchase a new browser (session, address): best 2 seats,
    then reserve (one hold in five released instead). ``sold`` maps every reservation
    that answered 201 to its seats."""

    def __init__(self, event: Event, threads: int = 3) -> None:
        self.event = event
        self.sold: dict[str, list[str]] = {}
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._buy, daemon=True) for _ in range(threads)]

    def _buy(self) -> None:
        try:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                with self.lock:
                    address = next(ADDRESSES)
                client = Client(REMOTE_ADDR=address)
                response = client.post(
                    f"/api/events/{self.event.pk}/holds",
                    {"best": {"count": 2}},
                    content_type="application/json",
                )
                if response.status_code == 409:
                    return  # sold out
                assert response.status_code == 201, response.content
                token = response.json()["hold_token"]
                if n % 5 == 4:
                    response = client.post(
                        f"/api/holds/{token}/release", {}, content_type="application/json"
                    )
                    assert response.status_code == 200, response.content
                    continue
                response = client.post(f"/api/holds/{token}/reserve")
                assert response.status_code == 201, response.content
                body = response.json()
                with self.lock:
                    self.sold[body["reservation_id"]] = body["seats"]
                time.sleep(0.05)
        except BaseException as exc:  # handed to the test
            self.errors.append(exc)

    def count(self) -> int:
        with self.lock:
            return len(self.sold)

    def more(self, count: int, what: str) -> None:
        target = self.count() + count
        wait_until(lambda: self.count() >= target or bool(self.errors), what, timeout=60)
        assert not self.errors, self.errors

    @contextmanager
    def buying(self) -> Iterator["Buyers"]:
        for thread in self.threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(30)
        assert not self.errors, self.errors


@contextmanager
def workers(names: tuple[str, ...], groups: dict[str, str]) -> Iterator[list[Running]]:
    """The named workers in threads, each in its group (the same group when run again)."""
    running = [Running.of(name, group=groups[name]).start() for name in names]
    try:
        yield running
    finally:
        for worker in running:
            worker.finish()  # fails the test if the worker died meanwhile


def broker_killed_and_restarted_empty(broker: TansuBroker) -> None:
    broker.kill()
    time.sleep(1.0)  # commands go on meanwhile: the write side is Redis
    broker.start()


def caught_up(event: Event, running: list[Running]) -> None:
    target = redis_seq(event)
    for worker in running:
        assert worker.error is None, worker.crash
    wait_until(
        lambda: (
            all(cursor_seq(name, event) >= target for name in PROJECTIONS)
            or any(w.error is not None for w in running)
        ),
        f"the projections to reach seq {target}",
        timeout=120,
    )
    for worker in running:
        assert worker.thread.is_alive() and worker.error is None, worker.crash


def assert_nothing_lost(event: Event, sold: dict[str, list[str]]) -> None:
    rows: dict[str, list[str]] = {}
    for reservation_id, seat in ReservedSeat.objects.filter(event=event).values_list(
        "reservation_id", "seat_key"
    ):
        rows.setdefault(str(reservation_id), []).append(seat)
    missing = {r: seats for r, seats in sold.items() if sorted(rows.get(r, [])) != sorted(seats)}
    assert not missing, f"{len(missing)} of {len(sold)} confirmed reservations not in Postgres"
    assert_persistence_matches_redis(event)
    assert_stats_match_redis(event)
    assert event_reconcile(event_id=event.pk) == []
    assert event_index_problems(event_id=event.pk) == []


def test_a_broker_restarted_empty_under_load_loses_no_reservation(own_broker, event, settings):
    own_broker.start()
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])
    groups = {name: f"loss-{name}-{uuid.uuid4().hex[:8]}" for name in (*PROJECTIONS, "gateway")}
    buyers = Buyers(event)
    with RelayThread(), workers((*PROJECTIONS, "gateway"), groups) as running:
        with buyers.buying():
            buyers.more(20, "reservations before the broker dies")
            wait_until(lambda: cursor_seq("persistence", event) > 0, "persistence to apply")
            broker_killed_and_restarted_empty(own_broker)
            buyers.more(40, "reservations after the broker came back")
        caught_up(event, running)

    assert_nothing_lost(event, buyers.sold)


def test_a_broker_restarted_empty_while_the_consumers_are_behind_loses_nothing(
    own_broker, event, settings
):
    own_broker.start()
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])
    groups = {name: f"behind-{name}-{uuid.uuid4().hex[:8]}" for name in PROJECTIONS}
    buyers = Buyers(event)
    with RelayThread(), buyers.buying():
        with workers(PROJECTIONS, groups):
            buyers.more(20, "reservations the projections apply")
            wait_until(lambda: cursor_seq("persistence", event) > 0, "persistence to apply some")
        # The projections stopped: what is published now only the broker and the outbox have.
        buyers.more(40, "reservations the projections have not applied")
        broker_killed_and_restarted_empty(own_broker)
        buyers.more(20, "reservations after the broker came back")
    with RelayThread(), workers(PROJECTIONS, groups) as running:
        caught_up(event, running)

    assert_nothing_lost(event, buyers.sold)
