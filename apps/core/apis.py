"""The browsable API's front page."""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


class ApiRootApi(APIView):
    """Seats API. Routes and shapes: docs/api.md; schema below."""

    def get(self, request: Request) -> Response:
        return Response(
            {
                "events": reverse("event-list", request=request),
                "schema": reverse("schema", request=request),
            }
        )
