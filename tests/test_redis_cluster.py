"""Redis Cluster (docs/architecture.md, "Redis Cluster"): every script's keys share a slot,
the global keys are touched alone, the settings refuse a cluster without plain Redis servers
for the cache and Celery, and on a real cluster the data spreads over its masters.

The write side's own tests run on the cluster too (tests/redis_cluster.py, CLUSTER_TESTS);
these check what only a cluster shows.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from redis.cluster import RedisCluster, key_slot

from apps.core import idempotency
from apps.core.door import BuyerRateThrottle
from apps.core.redis import redis_client_get, slot_tag
from apps.reservations.redis.keys import event_keys, events_index_key
from apps.reservations.selectors import _event_cache_keys
from apps.reservations.tests.factories import EventFactory, SeatFactory, SectionFactory
from apps.waitingroom import store

ROOT = Path(__file__).resolve().parent.parent
# The test's Redis is the cluster (conftest.py, redis_mode), and `-m cluster` selects it.
on_the_cluster = pytest.mark.parametrize(
    "redis_mode", [pytest.param("cluster", marks=pytest.mark.cluster)], indirect=True
)


def slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def test_each_script_gets_keys_of_one_slot():
    """What every script of the platform is given as KEYS (the scripts derive the fit sets'
    names from the meta key, under the same tag)."""
    keys = event_keys(42)
    assert len(slots([*keys.script_keys(), keys.fit("all", 2), keys.fit_ok("s:1", 3)])) == 1
    room = store.room_keys(42)
    assert slots([*room, f"{store.room_base(42)}-address:10.0.0.1"]) == slots(keys.script_keys())
    assert len(slots(list(_event_cache_keys(42)))) == 1
    # The door: the caller's rate window and their Idempotency-Key's record.
    caller = "session:abc"
    scope = idempotency._scoped("cookie", "key-1")
    assert len(slots([_throttle_key(caller), idempotency.record_key(scope, caller)])) == 1
    # Other callers land elsewhere: the tag spreads buyers over the cluster.
    assert len(slots([_throttle_key(f"session:{n}") for n in range(50)])) > 1


def _throttle_key(caller: str) -> str:
    """The door's key for ``caller`` (door.py, get_cache_key)."""

    class Request:
        class user:  # noqa: N801 - stands in for an anonymous user
            is_authenticated = False

        class session:  # noqa: N801
            session_key = caller.removeprefix("session:")

    return BuyerRateThrottle().get_cache_key(Request(), None)  # type: ignore[arg-type]


def test_global_keys_carry_no_tag():
    """The events and rooms indexes are one key each, in a slot of their own: only
    single-key commands touch them (inventory.inventory_load, lease.py, tasks through
    inventory_event_ids, waitingroom/services.py), never a script."""
    assert "{" not in events_index_key() and "{" not in store.rooms_index_key()


def settings_in(env: dict[str, str]) -> subprocess.CompletedProcess:
    script = "import django; from django.conf import settings; django.setup(); "
    script += "print(settings.REDIS_CLUSTER, settings.CACHE_REDIS_URL, settings.CELERY_BROKER_URL)"
    return subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_cluster_needs_plain_redis_servers_for_the_cache_and_celery():
    cluster = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "REDIS_CLUSTER": "true",
        "REDIS_URL": "redis://node-1:7000/0",
    }
    refused = settings_in(cluster | {"CACHE_REDIS_URL": "redis://cache:6379/0"})
    assert refused.returncode != 0
    assert "set CELERY_BROKER_URL to a plain Redis server" in refused.stderr
    plain = {"CACHE_REDIS_URL": "redis://cache:6379/0", "CELERY_BROKER_URL": "redis://q:6379/0"}
    accepted = settings_in(cluster | plain)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.split() == ["True", "redis://cache:6379/0", "redis://q:6379/0"]


@pytest.mark.django_db
@on_the_cluster
def test_events_spread_over_the_masters_and_each_stays_on_one(redis_mode):
    from apps.reservations import services

    client = redis_client_get()
    assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
    section = SectionFactory(name="A")
    SeatFactory(section=section, row="1", number=1)
    events = [EventFactory(venue=section.venue, sale_status="draft") for _ in range(9)]
    for event in events:
        services.event_open_sale(event=event)
    where = {}
    for event in events:
        keys = event_keys(event.pk)
        nodes = {client.get_node_from_key(key).name for key in keys.script_keys()}
        assert len(nodes) == 1
        (where[event.pk],) = nodes
        # The key is really there, on that node (not only computed to be).
        assert client.hget(keys.meta, "status") == "on_sale"
    assert len(set(where.values())) > 1, where
    assert sorted(int(e) for e in client.smembers(events_index_key())) == sorted(where)


@pytest.mark.django_db
@on_the_cluster
def test_readiness_pings_every_master(redis_mode):
    from apps.core.health import readiness_checks

    assert readiness_checks()["redis"] == "ok"


@pytest.mark.django_db
@on_the_cluster
def test_a_replayed_command_finds_its_record_in_the_callers_slot(redis_mode, sale):
    """The door reads the record and the rate window in one script: both in one slot."""
    buyer = Client()
    body = json.dumps({"seats": ["A-1-1"]})
    url = f"/api/events/{sale.pk}/holds"
    first = buyer.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    again = buyer.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == 201 and again["Idempotent-Replayed"] == "true"
    # Filed twice (the command gave the buyer their session): in the slot of the address
    # the first request was counted by, and in the one of the session its retry is.
    session = buyer.cookies[settings.SESSION_COOKIE_NAME].value
    callers = [slot_tag("127.0.0.1"), slot_tag(f"session:{session}")]
    pattern = f"{settings.SEATS_REDIS_PREFIX}:idempotency:*"
    assert slots(list(redis_client_get().scan_iter(match=pattern))) == slots(callers)
