"""HTTP plumbing shared by the command APIs: who the buyer is, CSRF, body limits (the
per-buyer rate is checked at the door, apps/core/door.py)."""

import hashlib

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

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
