"""Middleware of the whole site."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.http import http_date


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
