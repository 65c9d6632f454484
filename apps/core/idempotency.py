"""Idempotency-Key for commands (IETF httpapi draft "The Idempotency-Key HTTP Header").

A retry with the same key and body gets the first response again, without running the
command twice; the same key with another body is 422; a key whose first request is still
running is 409. Responses below 500 are kept for an hour, except refusals at the door (see
NOT_KEPT); a request that died leaves only a short "in flight" mark behind, so the client
can retry once it lapses.

The wrapper below checks the header and files a Claim on the request; the command's door
(apps/core/door.py) answers from the key's record or marks it in flight, in the same
Redis call as the buyer's rate; the wrapper then keeps the answer.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.addresses import client_address
from apps.core.http import MAX_COMMAND_BODY, BodyTooLarge, body_length
from apps.core.redis import redis_client_get, slot_tag

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# How long a key's answer is kept (docs/api.md, Buyer commands). Records live in the
# inventory's Redis, which never evicts (an evicted record would let a retry run the
# command twice), so only their expiry bounds them: an hour is far longer than a client's
# retries, and than a hold lives with the default ttl (3 × 10 min). A key retried later
# runs its command again, which by then is a new request, not a double: reserve, release
# and extend find the hold gone or expired; a hold is one more hold, within the buyer's cap.
KEEP_SECONDS = 3600
IN_FLIGHT_SECONDS = 60
# Refused before the command ran (authentication, CSRF, permissions, throttling): the
# client is meant to fix that and retry with the same key, which must then run the
# command, not replay the refusal for an hour. Running it again is safe: a 403 from the
# command itself (not_hold_owner) changed nothing and would say the same again.
NOT_KEPT = frozenset({401, 403, 429})


def _scope(request: HttpRequest, key: str) -> str:
    # Keys are only unique per client: scope them by whatever identifies the caller.
    caller = (
        request.META.get("HTTP_AUTHORIZATION")
        or request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        or client_address(request)
    )
    return _scoped(caller, key)


def record_key(scope: str, caller: str) -> str:
    """Where a key's record lives: its ``scope`` under the hash tag of ``caller``, the
    buyer as the door's rate counts them (door.py, ``caller``), whose one script reads the
    record and the buyer's rate window together: on a Redis Cluster a script's keys must
    share a slot. A retry reaches the same record: the same caller sends it."""
    return f"{settings.SEATS_REDIS_PREFIX}:idempotency:{slot_tag(caller)}:{scope}"


def _redis_key_after(request: HttpRequest, key: str) -> str | None:
    """Where this caller's retry looks, if the command just gave them a new session.

    An anonymous buyer's first command (usually the hold) creates their session: its retry
    carries the new cookie, so it would miss the answer filed under the old scope and run
    the command again (for best available: a second hold of other seats).
    """
    if request.META.get("HTTP_AUTHORIZATION"):
        return None
    session = getattr(request, "session", None)
    new = session.session_key if session is not None else None
    if not new or new == request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return None
    # The door counts the retry by its session, as it counts any anonymous buyer's.
    return record_key(_scoped(new, key), f"session:{new}")


def _scoped(caller: str, key: str) -> str:
    return hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


@dataclass
class Claim:
    """A request's Idempotency-Key: its scope (the caller and the key, hashed), the
    request's fingerprint and, once the door has seen the caller, its record's Redis key."""

    scope: str
    fingerprint: str
    key: str = ""  # set at the door: record_key
    claimed: bool = False  # the door marked it in flight for this request
    answered: bool = False  # the door found a record and answered from it

    def in_flight_record(self) -> str:
        return json.dumps({"state": "in_flight", "fingerprint": self.fingerprint})

    def answer(self, record: str) -> HttpResponse:
        """The reply to a request whose key already has a record."""
        self.answered = True
        return _replay(record, self.fingerprint)


class Answered(Exception):  # noqa: N818 - not an error: the answer, found at the door
    """Raised at the door with the reply for a key that has one; the API's exception
    handler returns it as it is."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("answered from the Idempotency-Key's record")
        self.response = response


def claim_of(request: HttpRequest) -> Claim | None:
    return getattr(request, "idempotency_claim", None)


def idempotent(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a command view (``SomeApi.as_view()``, whose throttle is the door) with
    Idempotency-Key handling."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None:
            return view(request, *args, **kwargs)
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            return _error(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 chars.")
        # The fingerprint reads the body: refuse an oversized one before it is read (as
        # command_body_middleware has, in front of every API route).
        if (body_length(request) or 0) > MAX_COMMAND_BODY:
            return _error(413, "too_large", BodyTooLarge.default_detail)
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path}\n".encode() + request.body
        ).hexdigest()
        claim = Claim(_scope(request, key), fingerprint)
        request.idempotency_claim = claim  # type: ignore[attr-defined]
        redis = redis_client_get()
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            if claim.claimed:
                redis.delete(claim.key)
            raise
        if not claim.claimed:
            # Answered from the record, or refused at or before the door (authentication,
            # content negotiation, permissions, rate): nothing ran, nothing to keep. A
            # command that succeeded without passing the door would have run unguarded.
            if response.status_code < 400 and not claim.answered:
                raise ImproperlyConfigured(f"{view.__name__} has no door (apps/core/door.py)")
            return response
        if response.status_code >= 500 or response.status_code in NOT_KEPT:
            redis.delete(claim.key)
            return response
        if hasattr(response, "render"):
            response.render()
        stored = {
            "state": "done",
            "fingerprint": fingerprint,
            "status": response.status_code,
            "content_type": response.get("Content-Type", "application/json"),
            "body": response.content.decode(),
        }
        for filed_under in (claim.key, _redis_key_after(request, key)):
            if filed_under is not None:
                redis.set(filed_under, json.dumps(stored), ex=KEEP_SECONDS)
        return response

    return wrapper


def _replay(raw: str, fingerprint: str) -> HttpResponse:
    stored = json.loads(raw)
    if stored["fingerprint"] != fingerprint:
        return _error(
            422, "idempotency_key_reused", "This Idempotency-Key was used with another request."
        )
    if stored["state"] == "in_flight":
        return _error(
            409, "idempotency_key_in_flight", "A request with this Idempotency-Key is running."
        )
    response = HttpResponse(
        stored["body"], status=stored["status"], content_type=stored["content_type"]
    )
    response["Idempotent-Replayed"] = "true"
    return response
