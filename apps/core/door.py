"""The door of every command: one Redis script call (docs/architecture.md, "Serving HTTP").

In this order, atomically: a request whose Idempotency-Key already has an answer (or is
still running) gets that, without counting against the buyer's rate; a buyer past their
rate is refused (429, the key left free for the retry); otherwise the request is counted
and its key marked in flight. DRF runs it as the commands' throttle, after authentication
and permissions, so a request refused there never claims its key either. Separately these
were three round trips (the key's SET NX, then the throttle's GET and SET).
"""

import secrets
from functools import cache

from django.conf import settings
from redis.commands.core import Script
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from apps.core import idempotency
from apps.core.addresses import client_address
from apps.core.redis import redis_script, slot_tag

# KEYS[1]: the caller's request log, a sorted set of request times (ms), DRF's sliding
# window; KEYS[2] (only with an Idempotency-Key): the key's record. Both carry the caller's
# hash tag (one slot on a Redis Cluster: idempotency.record_key).
# ARGV: now (ms), window (ms), limit (-1: none), a unique member, in-flight mark, its ttl (s).
DOOR_SCRIPT = """
if KEYS[2] then
  local record = redis.call('GET', KEYS[2])
  if record then return {'answered', record} end
end
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
    return {'wait', tostring(tonumber(oldest) + window - now)}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
end
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6]) end
return {'in'}
"""


@cache
def _door_script() -> Script:
    return redis_script(DOOR_SCRIPT)


class BuyerRateThrottle(SimpleRateThrottle):
    """Commands per buyer (user, session or, for neither, the client address), checked
    at the door together with the request's Idempotency-Key."""

    scope = "commands"
    # Set by SimpleRateThrottle.__init__ from the rate (None without one); not in its stubs.
    num_requests: int | None
    duration: int | None

    @staticmethod
    def caller(request: Request) -> str:
        """Who the rate counts: the user, the session, or the client address."""
        if request.user.is_authenticated:
            return f"user:{request.user.pk}"
        if request.session.session_key:
            return f"session:{request.session.session_key}"
        return client_address(request)

    def get_cache_key(self, request: Request, view: object) -> str:
        caller = self.caller(request)
        return f"{settings.SEATS_REDIS_PREFIX}:throttle:{self.scope}:{slot_tag(caller)}"

    def allow_request(self, request: Request, view: object) -> bool:
        self._wait_s = None
        claim = idempotency.claim_of(request)
        if self.rate is None and claim is None:
            return True
        if claim is not None:
            claim.key = idempotency.record_key(claim.scope, self.caller(request))
        now_ms = int(self.timer() * 1000)
        outcome, *detail = _door_script()(
            keys=[self.get_cache_key(request, view), *([claim.key] if claim else [])],
            args=[
                now_ms,
                (self.duration or 0) * 1000,
                self.num_requests if self.num_requests is not None else -1,
                f"{now_ms}:{secrets.token_hex(4)}",  # two requests in one ms both count
                claim.in_flight_record() if claim else "",
                idempotency.IN_FLIGHT_SECONDS,
            ],
        )
        if outcome == "answered":
            assert claim is not None  # only a key's record is answered
            raise idempotency.Answered(claim.answer(detail[0]))
        if outcome == "wait":
            self._wait_s = int(detail[0]) / 1000
            return False
        if claim is not None:
            claim.claimed = True
        return True

    def wait(self) -> float | None:
        return self._wait_s
