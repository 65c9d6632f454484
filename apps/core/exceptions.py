"""Domain errors and the one place that turns them into the API's JSON error shape."""

from typing import Any

from django.http import Http404, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.idempotency import Answered


class DomainError(Exception):
    """A business rule said no. Each app subclasses it with a stable ``code``."""

    code = "invalid"
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request breaks a business rule."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


def api_exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """Render every error as ``{"code", "detail", ...}`` (docs/api.md, Errors)."""
    if isinstance(exc, Answered):  # not an error: an Idempotency-Key's reply, as it is
        return exc.response
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": "Invalid input.",
            "errors": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        response.data = {
            "code": code if isinstance(code, str) else exc.default_code,
            "detail": str(exc.detail),
        }
    return response
