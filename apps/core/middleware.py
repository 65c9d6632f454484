"""Middleware of the whole site."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.http import http_date

from apps.core import logs

access_log = logging.getLogger("apps.core.access")

# An incoming X-Request-ID (nginx sets one, docs/architecture.md, Observability) is kept if
# it looks like an id; anything else is replaced, so a log line cannot be forged through it.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def date_header_middleware(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """Every response says when it was made (RFC 9110, 6.6.1: a server with a clock sends
    Date), which daphne does not do. The seat map reads it to count a hold down on the
    server's clock, not on a buyer's clock that may be minutes off."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        if "Date" not in response:
            response["Date"] = http_date()
        return response

    return middleware


def request_id_middleware(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[[HttpRequest], HttpResponseBase]:
    """Every request gets an id: on every log line written for it (apps.core.logs), in the
    envelopes it emits, in the X-Request-ID response header, and on its access log line."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        given = request.headers.get("X-Request-ID", "")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.id = rid  # type: ignore[attr-defined]
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        try:
            response = get_response(request)
            response["X-Request-ID"] = rid
            access_log.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            return response
        finally:
            logs.request_id.reset(token)

    return middleware
