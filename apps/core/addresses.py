"""The client's network address, and the limit on new buyers per address
(docs/architecture.md, "Abuse limits").

A buyer is their session or their user (apps/core/http.py), but a session costs nothing to
make: a script that drops its cookies is a new buyer on every request. What it cannot
change as easily is where it connects from, so the limits that a crowd of real buyers
never reaches are kept per address: new sessions here, seats held at once in the hold
script (apps/reservations/redis/hold.lua).
"""

import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest
from redis.commands.core import Script
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core.redis import redis_script

# An IPv6 subscriber is given a whole /64 (at least) and picks addresses in it at will:
# any address in one /64 is the same client.
IPV6_CLIENT_PREFIX = 64


def client_address(request: Request | HttpRequest) -> str:
    """The address the request came from, for every per-address rule.

    REMOTE_ADDR, unless SEATS_TRUSTED_PROXIES (DRF's NUM_PROXIES) says that many proxies
    of ours stand in front: then the address the outermost of them saw, read from the
    right of X-Forwarded-For, where each proxy appends its peer (DRF's get_ident). Anything
    a client writes into the header itself sits further left and is never read. An entry
    that is not an address was not written by a proxy we trust: REMOTE_ADDR instead.
    IPv6 addresses count by their /64.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    try:
        # get_ident reads only META, which a Django request has as well as DRF's.
        ip = ipaddress.ip_address(BaseThrottle().get_ident(request) or remote)  # type: ignore[arg-type]
    except ValueError:
        return remote
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


class TooManyNewBuyers(Throttled):
    """A 429 like the command rate's, with its Retry-After, under a code of its own. (Not
    a DomainError: the authentication classes import this module, and DomainError's
    module imports DRF's views, which load the authentication classes.)"""

    default_code = "too_many_new_buyers"
    default_detail = (
        "Too many new buyers from this address: keep the session's cookie, or try again later."
    )


# KEYS[1]: the address's counter. ARGV[1]: the window (ms). A fixed window, counted and
# started in one round trip; returns the count and the ms left in the window.
NEW_BUYER_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {count, ttl}
"""


@cache
def _new_buyer_script() -> Script:
    return redis_script(NEW_BUYER_SCRIPT)


def new_buyer_admit(request: Request | HttpRequest) -> None:
    """Count a new buyer (session) from the request's address; refuse one past
    SEATS_NEW_BUYERS_PER_ADDRESS within SEATS_NEW_BUYERS_WINDOW_S (0: no limit)."""
    limit = settings.SEATS_NEW_BUYERS_PER_ADDRESS
    if limit <= 0:
        return
    address = client_address(request)
    key = f"{settings.SEATS_REDIS_PREFIX}:new-buyers:{address}"
    count, ttl_ms = _new_buyer_script()(
        keys=[key], args=[settings.SEATS_NEW_BUYERS_WINDOW_S * 1000]
    )
    if count > limit:
        raise TooManyNewBuyers(wait=ttl_ms / 1000)
