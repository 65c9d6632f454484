"""The Redis connection the write and read sides use for seat state (not the cache).

A plain Redis by default; with ``REDIS_CLUSTER`` a Redis Cluster, through redis-py's
cluster client (``REDIS_URL`` then names one node: the client finds the others). Every
script's keys share one hash slot, and anything that must run on both is here
(docs/architecture.md, "Redis Cluster").
"""

import hashlib
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, TypeAlias

import redis
from django.conf import settings
from redis.client import Pipeline
from redis.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import Script

# Both have the same command methods; a cluster routes each command to the node of its
# key's slot, and refuses what would span slots.
RedisClient: TypeAlias = redis.Redis | RedisCluster
RedisPipeline: TypeAlias = Pipeline | ClusterPipeline


@cache
def redis_client_get() -> RedisClient:
    """One pooled client per process; the pool is thread-safe."""
    if settings.REDIS_CLUSTER:
        return RedisCluster.from_url(settings.REDIS_URL, decode_responses=True)
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


class _CurrentClientScript(Script):
    """A script that runs on the client ``redis_client_get`` returns when it is called, not
    the one it was registered with: modules keep their scripts for the process's life
    (``functools.cache``), and the tests switch between a plain Redis and a cluster."""

    def __call__(
        self,
        keys: Sequence[Any] | None = None,
        args: Iterable[Any] | None = None,
        client: Any = None,
    ) -> Any:
        return super().__call__(keys, args, client if client is not None else redis_client_get())


def redis_script(source: str) -> Script:
    """``register_script`` on the platform's Redis: run it with ``keys`` of one slot."""
    return _CurrentClientScript(redis_client_get(), source)


def slot_tag(text: str) -> str:
    """A hash tag for keys that one script touches together though they belong to no
    event: every key with it lives in one cluster slot. A digest, so that what it stands
    for (a session key, say) is not written into key names."""
    return "{c:" + hashlib.sha256(text.encode()).hexdigest()[:24] + "}"


def pipeline_scripts(
    pipe: RedisPipeline, script: Script, calls: Iterable[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """Queue ``script`` once per ``(keys, args)`` on a non-transactional pipeline, ahead
    of anything else queued on it: ``[*pipeline_scripts(pipe, ...), *pipe.execute()]``
    are then all the replies, in order.

    On a plain Redis the calls go with the pipeline, in its one round trip, and this
    returns []. redis-py's cluster pipeline groups commands by node but refuses scripts
    (EVALSHA): on a cluster the calls run here, one round trip each, and this returns
    their replies.
    """
    if isinstance(pipe, ClusterPipeline):
        return [script(keys=keys, args=args) for keys, args in calls]
    for keys, args in calls:
        script(keys=keys, args=args, client=pipe)
    return []
