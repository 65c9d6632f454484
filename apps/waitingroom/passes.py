"""Admission passes: signed, expiring, bound to one buyer of one event.

The claim script (redis/claim.lua) decides who may have a pass and until when; the pass
itself is that decision signed with the SECRET_KEY, so checking one on every command is a
signature check, not another Redis round trip. It names the buyer (their session's or
user's id, apps/core/http.py), so a pass copied into another session is worth nothing.
"""

from collections.abc import Mapping

from django.core import signing

from apps.reservations.redis import inventory

SALT = "seats.waitingroom.pass"


def pass_cookie_name(event_id: int) -> str:
    return f"seats_pass_{int(event_id)}"


def pass_sign(*, event_id: int, buyer: str, expires_ms: int) -> str:
    return signing.dumps({"e": int(event_id), "b": buyer, "x": int(expires_ms)}, salt=SALT)


def pass_valid(cookies: Mapping[str, str], *, event_id: int, buyer: str | None) -> bool:
    """Whether ``cookies`` carry an unexpired pass of ``buyer`` for ``event_id``."""
    token = cookies.get(pass_cookie_name(event_id))
    if not token or buyer is None:
        return False
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return False
    return (
        isinstance(claims, dict)
        and claims.get("e") == int(event_id)
        and claims.get("b") == buyer
        and isinstance(claims.get("x"), int)
        and claims["x"] > inventory.clock_ms()
    )
