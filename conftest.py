"""Test isolation for the three real backing services.

Each test gets its own Redis key prefix and its own Kafka topic names, so tests never
see each other's seats or events, and a developer's local run on the same servers is
never touched. Postgres isolation is pytest-django's (a test database, transactions).
"""

import uuid

import pytest


@pytest.fixture(autouse=True)
def _isolated_names(settings):
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
