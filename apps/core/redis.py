"""The Redis connection the write and read sides use for seat state (not the cache)."""

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client_get() -> redis.Redis:
    """One pooled client per process; the pool is thread-safe."""
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
