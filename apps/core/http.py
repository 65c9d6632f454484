"""HTTP plumbing shared by the command APIs: who the buyer is, CSRF, body limits (the
per-buyer rate is checked at the door, apps/core/door.py)."""

import hashlib
import io
from collections.abc import Callable
from typing import IO

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.middleware.csrf import get_token
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.utils import json

from apps.core.addresses import new_buyer_admit

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
        # Sessions are free to make, so a script would be a new buyer on every request:
        # new ones are limited per address (apps/core/addresses.py).
        new_buyer_admit(request)
        session.save()
        get_token(getattr(request, "_request", request))
    key = session.session_key
    assert key is not None  # made above
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
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


# --- command bodies: read whole and bounded, refused in the API's JSON error shape ------

# Commands nest two deep ({"best": {"count": 2}}); a little slack, and nothing like the
# thousands of brackets that would exhaust the JSON parser's recursion.
MAX_JSON_DEPTH = 5
API_PREFIX = "/api/"


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
    default_detail = f"The request body is larger than {MAX_COMMAND_BODY} bytes."


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` nests arrays and objects deeper than ``limit``: one pass, no
    recursion, brackets inside strings ignored. Well-formedness is left to the parser."""
    if text.count("[") + text.count("{") <= limit:
        return False  # every real command: too few brackets to nest that deep
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes of ``stream``: reads until it ends, since a read may come short."""
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class CommandJSONParser(JSONParser):
    """A command's body: JSON of MAX_COMMAND_BODY bytes and MAX_JSON_DEPTH levels at most.
    Anything else is a JSON 4xx (docs/api.md, Errors), never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        # Bounded whatever Content-Length said (command_body_middleware has checked it).
        raw = read_at_most(stream, MAX_COMMAND_BODY + 1)
        if len(raw) > MAX_COMMAND_BODY:
            raise BodyTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ParseError(f"The request body is not {encoding} text.") from exc
        if json_too_deep(text):
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            # As DRF's JSONParser: NaN and Infinity are not JSON.
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except (ValueError, RecursionError) as exc:  # RecursionError: in case the check missed
            raise ParseError(f"JSON parse error - {exc}") from exc


def body_length(request: HttpRequest) -> int | None:
    """The request's Content-Length; None when it sent none, -1 when it is not a length."""
    declared = request.META.get("CONTENT_LENGTH")
    if not declared:
        return None
    try:
        length = int(declared)
    except ValueError:
        return -1
    return length if length >= 0 else -1


def body_sent(request: Request | HttpRequest) -> bool:
    """Whether the request came with a body (of any framing: command_body_middleware gives a
    body without Content-Length one)."""
    return (body_length(getattr(request, "_request", request)) or 0) > 0


def _body_to_its_end(request: HttpRequest) -> IO[bytes] | None:
    """The raw body of a request that declared no length, where the server promises that it
    ends: WSGI servers that say so (``wsgi.input_terminated``: granian, gunicorn), and ASGI,
    whose handler has read the whole body into a file already (daphne)."""
    if isinstance(request, ASGIRequest):
        return request._stream
    environ = getattr(request, "environ", {})
    if environ.get("wsgi.input_terminated"):
        return environ["wsgi.input"]
    return None


def _refusal(status_code: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status_code)


def command_body_middleware(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """API request bodies, before anything reads them (CSRF, the Idempotency-Key, DRF).

    Over MAX_COMMAND_BODY is 413 ``too_large`` in the API's error shape: Django's own limit
    (DATA_UPLOAD_MAX_MEMORY_SIZE) would answer with an HTML page. A body sent without a
    Content-Length (chunked, or HTTP/2) is read here, whole and bounded, and given one:
    under WSGI, Django reads nothing without it, and DRF reads nothing either way, so the
    body would be taken for an empty one. Where the server cannot say where such a body
    ends, it is 411 ``length_required``.
    """

    def middleware(request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(API_PREFIX):
            refusal = _body_settle(request)
            if refusal is not None:
                return refusal
        return get_response(request)

    return middleware


# A refused body up to this size is read and thrown away before the answer: a server that
# answers and closes while a proxy is still sending makes the proxy answer 502 instead of
# the 413. A bigger one is not worth reading; its sender may see the connection close.
DISCARD_MAX = 1024 * 1024


def _body_discard(request: HttpRequest, length: int) -> None:
    if length <= DISCARD_MAX:
        stream = request._stream  # bounded by Content-Length
        while stream.read(64 * 1024):
            pass


def _body_settle(request: HttpRequest) -> JsonResponse | None:
    """A refusal, or None once the body is known to be whole and small enough."""
    length = body_length(request)
    chunked = "HTTP_TRANSFER_ENCODING" in request.META
    # With Transfer-Encoding, Content-Length is not the body's length (RFC 9112, 6.3).
    if length is not None and not chunked:
        if length < 0:
            return _refusal(400, "parse_error", "Content-Length is not a length.")
        if length > MAX_COMMAND_BODY:
            _body_discard(request, length)
            return _refusal(413, "too_large", BodyTooLarge.default_detail)
        return None
    if not chunked and request.method in ("GET", "HEAD", "OPTIONS"):
        return None  # no body to read, and reads are the hot path (the seat map's)
    stream = _body_to_its_end(request)
    if stream is None:
        if chunked:
            return _refusal(411, "length_required", "Send the body with a Content-Length.")
        return None  # neither Content-Length nor Transfer-Encoding: no body
    body = read_at_most(stream, MAX_COMMAND_BODY + 1)
    if len(body) > MAX_COMMAND_BODY:
        return _refusal(413, "too_large", BodyTooLarge.default_detail)
    request._stream = io.BytesIO(body)  # what Django, and DRF through it, read from now on
    request.META["CONTENT_LENGTH"] = str(len(body))
    return None
