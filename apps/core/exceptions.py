"""Domain errors and the one place that turns them into the API's JSON error shape."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.idempotency import Answered


class DomainError(Exception):
    """A business rule said no. Each app subclasses it with a stable ``code``."""

    code: str = "invalid"
    status_code: int = status.HTTP_400_BAD_REQUEST
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


# --- the error shape in the OpenAPI schema (/api/schema/) -----------------------------


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    """The body of every error under /api/ (docs/api.md, Errors): what
    api_exception_handler, DomainError.as_dict and the middleware's refusals write."""

    code = serializers.CharField(help_text="Stable: what clients test (docs/api.md, Errors).")
    detail = serializers.CharField(help_text="For people; its wording may change.")
    # A field, not Serializer.errors: the metaclass takes fields off the class.
    errors = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="`invalid` only: what is wrong with each field of the body."
    )
    seats = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="The seats concerned (`seats_unavailable`: every one of them).",
    )
    limit = serializers.IntegerField(
        required=False, help_text="The most seats allowed (`*_limit_exceeded`)."
    )
    held = serializers.IntegerField(
        required=False, help_text="How many seats are held already (`*_limit_exceeded`)."
    )


# A route's errors: status → the codes it may answer with there.
ErrorCodes = Mapping[int, Iterable[str]]


def error_responses(
    *groups: ErrorCodes, shapes: Mapping[int, type[serializers.Serializer]] | None = None
) -> dict[int, OpenApiResponse]:
    """The ``extend_schema(responses=...)`` entries of a route's errors: each status with
    the Error body, its description the codes it carries there. ``groups`` are merged;
    ``shapes`` gives a status a body of its own (one that extends ErrorSerializer)."""
    codes: dict[int, list[str]] = {}
    for group in groups:
        for status_code, names in group.items():
            listed = codes.setdefault(status_code, [])
            for name in names:
                if name not in listed:
                    listed.append(name)
    return {
        status_code: OpenApiResponse(
            (shapes or {}).get(status_code, ErrorSerializer),
            description=", ".join(f"`{name}`" for name in names),
        )
        for status_code, names in sorted(codes.items())
    }
