"""Health of a web process, for orchestrators and load balancers (docs/api.md, Operations).

``/healthz``: the process answers (liveness; restart it if not). ``/readyz``: it can serve,
because Postgres, Redis (the inventory's and the cache's) and the broker answer (readiness;
send it no traffic if not). The worker processes have no HTTP server of their own: their
liveness is the heartbeat on their metrics port (scripts/worker_alive.py). ``/metrics``:
Prometheus text (apps/core/metrics.py).
"""

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_redis import get_redis_connection
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from redis import RedisError
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from apps.core.metrics import metrics_text
from apps.core.redis import redis_client_get

log = logging.getLogger(__name__)

# A readiness probe must answer within the orchestrator's timeout (compose: 5 s) even when
# a dependency hangs instead of refusing.
CHECK_TIMEOUT_MS = 2_000


def _postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    client = redis_client_get()
    if isinstance(client, RedisCluster):
        client.ping(target_nodes=RedisCluster.PRIMARIES)  # every master: each has its slots
    else:
        client.ping()


def _cache() -> None:
    # Sessions live in the cache's Redis (CACHE_REDIS_URL, its own server in compose): no
    # buyer command can be served without it.
    get_redis_connection("default").ping()


def _broker() -> None:
    # Connecting bootstraps: it fetches the cluster's metadata from one of the brokers.
    KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        bootstrap_timeout_ms=CHECK_TIMEOUT_MS,
        request_timeout_ms=CHECK_TIMEOUT_MS,
    ).close()


CHECKS = {"postgres": _postgres, "redis": _redis, "cache": _cache, "broker": _broker}


def readiness_checks() -> dict[str, str]:
    """Each dependency → "ok" or why not."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except (DatabaseError, RedisError, RedisClusterException, KafkaError, OSError) as exc:
            log.warning("readiness: %s does not answer: %r", name, exc)
            results[name] = f"unavailable: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness_checks()
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = metrics_text()
    return HttpResponse(body, content_type=content_type)
