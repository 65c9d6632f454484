"""The browsable API's front page, and the API's answers to what reaches no API view."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from apps.core.http import API_PREFIX


class ApiRootApi(APIView):
    """Seats API. Routes and shapes: docs/api.md; schema below."""

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot", {"events": serializers.URLField(), "schema": serializers.URLField()}
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "events": reverse("event-list", request=request),
                "schema": reverse("schema", request=request),
            }
        )


# Django's error pages (config/urls.py handler400 / handler404). Under /api/ they are the
# API's JSON error shape (docs/api.md, Errors): a URL no route matches (an event id of -1)
# or a request Django refuses before any view (a bad Host, too many form fields).


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"code": "bad_request", "detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


class SessionCsrfScheme(SessionScheme):
    """The buyer's session in the schema (/api/schema/): drf-spectacular knows DRF's
    SessionAuthentication, not our subclass of it (defined here, the module the API's URLs
    load first, so it is registered before any schema is generated)."""

    target_class = "apps.core.http.SessionCsrfAuthentication"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            **super().get_security_definition(auto_schema),
            "description": "The Django session (anonymous buyers too). A request with the "
            "cookie must send the CSRF token in `X-CSRFToken` (the `csrftoken` cookie).",
        }
