"""HTTP plumbing shared by the command APIs: who the buyer is, CSRF, body limits, throttling."""

import hashlib
import secrets
from functools import cache

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from redis.commands.core import Script
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from apps.core.redis import redis_client_get

# A command body is a few seat keys; anything bigger is a mistake or an attack, refused
# before it is read into memory.
MAX_COMMAND_BODY = 16 * 1024


def buyer_id_get(request: Request | HttpRequest) -> str:
    """A stable, non-secret id of the buyer: their user, or else their browser session.

    The session key itself is a credential and events are broadcast, so only a hash of it
    ever leaves this function. Anonymous buyers get a session on their first command, and
    with it the CSRF cookie: from then on their cookie requests must echo that token
    (SessionCsrfAuthentication), and an API client has no page to read it from.
    """
    user = request.user
    if user.is_authenticated:
        return f"user:{user.pk}"
    session = request.session
    if session.session_key is None:
        session.save()
        get_token(getattr(request, "_request", request))
    digest = hashlib.sha256(session.session_key.encode()).hexdigest()[:24]
    return f"session:{digest}"


def buyer_id_peek(request: Request | HttpRequest) -> str | None:
    """The buyer's id if they have one already; reads never create a session."""
    if request.user.is_authenticated or request.session.session_key is not None:
        return buyer_id_get(request)
    return None


class SessionCsrfAuthentication(SessionAuthentication):
    """Session auth that also checks CSRF for anonymous buyers.

    DRF only checks CSRF for logged-in users, but an anonymous buyer's holds also hang on
    a cookie that a hostile page could ride. Requests with an Authorization header
    (API tokens) carry no ambient credential and are left to the token authenticator.
    """

    def authenticate(self, request: Request):  # type: ignore[no-untyped-def]
        result = super().authenticate(request)
        if (
            result is None
            and settings.SESSION_COOKIE_NAME in request._request.COOKIES
            and "HTTP_AUTHORIZATION" not in request.META
        ):
            self.enforce_csrf(request)
        return result


class CommandJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        request = parser_context["request"]
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_COMMAND_BODY:
            raise ParseError(f"The request body is larger than {MAX_COMMAND_BODY} bytes.")
        return super().parse(stream, media_type, parser_context)


# DRF's SimpleRateThrottle keeps each caller's request times as a list in the cache: a
# GET and a SET per command. This is the same sliding window as one atomic script call:
# a sorted set of request times (ms), trimmed to the window; a full window refuses and
# says when its oldest request leaves it.
RATE_SCRIPT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
  return tonumber(oldest) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""


@cache
def _rate_script() -> Script:
    return redis_client_get().register_script(RATE_SCRIPT)


class BuyerRateThrottle(SimpleRateThrottle):
    """Commands per buyer (user, session or, for neither, the client address): DRF's
    sliding window, counted in one Redis round trip (RATE_SCRIPT)."""

    scope = "commands"

    def get_cache_key(self, request: Request, view: object) -> str:
        if request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        elif request.session.session_key:
            ident = f"session:{request.session.session_key}"
        else:
            ident = self.get_ident(request)
        return f"{settings.SEATS_REDIS_PREFIX}:throttle:{self.scope}:{ident}"

    def allow_request(self, request: Request, view: object) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        window_ms = self.duration * 1000
        # A unique member per request: two in the same millisecond both count.
        now_ms = int(self.timer() * 1000)
        member = f"{now_ms}:{secrets.token_hex(4)}"
        wait_ms = _rate_script()(keys=[key], args=[now_ms, window_ms, self.num_requests, member])
        self._wait_s = None if wait_ms < 0 else wait_ms / 1000
        return self._wait_s is None

    def wait(self) -> float | None:
        return self._wait_s
