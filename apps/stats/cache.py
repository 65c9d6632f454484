"""The Redis hot copy of each event's stats body: what the read API serves first.

One hash per event, ``<prefix>:stats:{ev:<id>}`` (the event's hash tag, like its inventory
keys): ``seq`` and ``body`` (the API's JSON). Postgres stays the source of truth; the copy is
rewritten after each commit that changed the event and can be dropped at any time.
"""

import json

from django.conf import settings

from apps.core import metrics
from apps.core.redis import redis_client_get

# Two writers can race (a rebalance hands the partition over mid-batch, or a rebuild runs next
# to a late on_commit); the copy must never go back to an older seq.
_WRITE_IF_NEWER = """
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
if current > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'body', ARGV[2])
return 1
"""


def stats_cache_key(event_id: int) -> str:
    return f"{settings.SEATS_REDIS_PREFIX}:stats:{{ev:{event_id}}}"


def stats_cache_get(*, event_id: int) -> dict | None:
    raw = redis_client_get().hget(stats_cache_key(event_id), "body")
    return json.loads(raw) if raw else None


def stats_cache_set(*, body: dict) -> bool:
    """Store ``body`` unless the copy already holds a later seq; True when written."""
    client = redis_client_get()
    written = client.eval(
        _WRITE_IF_NEWER,
        1,
        stats_cache_key(body["event_id"]),
        body["seq"],
        json.dumps(body, separators=(",", ":")),
    )
    if written:
        # The same figures for Prometheus (the sale dashboard's sold vs free), from the
        # process that wrote them: the stats worker.
        event = str(body["event_id"])
        for state in ("free", "held", "reserved", "blocked"):
            metrics.EVENT_SEATS.labels(event, state).set(body[state])
        metrics.EVENT_REVENUE.labels(event).set(float(body["revenue"]))
    return bool(written)


def stats_gauges_forget(event_ids: set[int]) -> None:
    """Stop reporting ``event_ids``' figures from this process: another stats worker owns
    them now, and a scrape summing the workers' gauges must count each event once."""
    for event_id in event_ids:
        event = str(event_id)
        metrics.EVENT_SEATS.remove_by_labels({"event": event})
        metrics.EVENT_REVENUE.remove_by_labels({"event": event})


def stats_cache_clear() -> int:
    """Drop every event's copy (before a rebuild); returns how many."""
    client = redis_client_get()
    keys = list(client.scan_iter(match=f"{settings.SEATS_REDIS_PREFIX}:stats:*", count=1000))
    if keys:
        # One key at a time: on a cluster the keys live in different slots.
        for key in keys:
            client.delete(key)
    return len(keys)
