"""HTTP API of the write side and its catalog (docs/api.md). Thin over services."""

import re
import time
from functools import lru_cache
from typing import Any, ClassVar

from django.http import Http404, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.addresses import client_address
from apps.core.door import BuyerRateThrottle
from apps.core.http import CommandJSONParser, body_sent, buyer_id_get
from apps.core.metrics import command_observe
from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.selectors import (
    PublicEvent,
    event_layout,
    event_list,
    event_public_get,
)
from apps.waitingroom.passes import pass_valid

MAX_SEATS_PER_COMMAND = 100
ACCEPTS_GZIP = re.compile(r"\bgzip\b")  # as Django's GZipMiddleware reads Accept-Encoding


class SeatListField(serializers.ListField):
    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(
            child=serializers.CharField(max_length=40),
            min_length=1,
            max_length=MAX_SEATS_PER_COMMAND,
            **kwargs,
        )


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    starts_at = serializers.DateTimeField()
    sale_status = serializers.CharField()
    venue = serializers.CharField(source="venue_name")
    hold_ttl_seconds = serializers.IntegerField()
    max_seats_per_hold = serializers.IntegerField()


class EventListApi(APIView):
    """Events that are on sale or have been."""

    def get(self, request: Request) -> Response:
        return Response(EventOutputSerializer(event_list(), many=True).data)


@lru_cache(maxsize=256)
def _event_json(event: PublicEvent) -> bytes:
    """The event's JSON body, encoded once per process for each version of the event."""
    return JSONRenderer().render(EventOutputSerializer(event).data)


class EventDetailApi(APIView):
    """Every buyer opening the map asks for it: JSON clients get bytes encoded once per
    process (a changed event is another key of the memo); the browsable API renders."""

    def get(self, request: Request, event_id: int) -> HttpResponseBase:
        event = event_public_get(event_id=event_id)
        if event is None:
            raise Http404
        if isinstance(request.accepted_renderer, JSONRenderer):
            return HttpResponse(_event_json(event), content_type="application/json")
        return Response(EventOutputSerializer(event).data)


class EventLayoutApi(APIView):
    """What the seat map draws (docs/api.md, Seat map layout). It cannot change while the
    event is on sale, so browsers keep it for a few minutes and revalidate by ETag. JSON
    clients get the bytes encoded (and gzipped) once per process; the browsable API renders
    as usual."""

    def get(self, request: Request, event_id: int) -> HttpResponseBase:
        event = event_public_get(event_id=event_id)
        if event is None:
            raise Http404
        layout = event_layout(event_id=event_id, venue_name=event.venue_name)
        response = get_conditional_response(request, etag=layout.etag)
        if response is None and isinstance(request.accepted_renderer, JSONRenderer):
            gzipped = ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", ""))
            response = HttpResponse(
                layout.gzipped if gzipped else layout.json, content_type="application/json"
            )
            if gzipped:
                response["Content-Encoding"] = "gzip"
        elif response is None:
            response = Response(layout.body)
        response["ETag"] = layout.etag
        patch_vary_headers(response, ["Accept", "Accept-Encoding"])
        patch_cache_control(response, public=True, max_age=300)
        return response


class CommandApi(APIView):
    """Base of the buyer and staff commands: small JSON bodies, throttled per buyer, each
    counted and timed by ``command`` and outcome (apps/core/metrics.py)."""

    parser_classes = [CommandJSONParser]
    throttle_classes = [BuyerRateThrottle]
    command: ClassVar[str]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        started = time.perf_counter()
        try:
            response = super().dispatch(request, *args, **kwargs)
        except Exception:
            command_observe(self.command, 500, None, time.perf_counter() - started)
            raise
        data = getattr(response, "data", None)
        code = data.get("code") if isinstance(data, dict) else None
        command_observe(self.command, response.status_code, code, time.perf_counter() - started)
        return response


class HoldCreateApi(CommandApi):
    """Hold seats: `{"seats": [...]}` or `{"best": {"count": 2, "section": 3}}`."""

    command = "hold"

    class BestSerializer(serializers.Serializer):
        count = serializers.IntegerField(min_value=1, max_value=MAX_SEATS_PER_COMMAND)
        section = serializers.IntegerField(required=False)
        category = serializers.IntegerField(required=False)

    # Named for the schema: every view's serializers are called Input and Output.
    @extend_schema_serializer(component_name="HoldRequest")
    class InputSerializer(serializers.Serializer):
        seats = SeatListField(required=False)
        best = serializers.DictField(required=False)

        def validate(self, attrs: dict) -> dict:
            if ("seats" in attrs) == ("best" in attrs):
                raise serializers.ValidationError('Give either "seats" or "best".')
            if "best" in attrs:
                best = HoldCreateApi.BestSerializer(data=attrs["best"])
                best.is_valid(raise_exception=True)
                attrs["best"] = services.BestRequest(
                    count=best.validated_data["count"],
                    section_id=best.validated_data.get("section"),
                    category_id=best.validated_data.get("category"),
                )
            return attrs

    @extend_schema_serializer(component_name="Hold")
    class OutputSerializer(serializers.Serializer):
        hold_token = serializers.CharField(source="token")
        event_id = serializers.IntegerField()
        seats = serializers.ListField(child=serializers.CharField())
        expires_at = serializers.DateTimeField()
        seq = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, event_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        holder = buyer_id_get(request)
        hold = services.hold_create(
            event_id=event_id,
            holder=holder,
            seats=data.validated_data.get("seats"),
            best=data.validated_data.get("best"),
            address=client_address(request),
            admitted=pass_valid(request.COOKIES, event_id=event_id, buyer=holder),
        )
        return Response(self.OutputSerializer(hold).data, status=status.HTTP_201_CREATED)


def hold_buyer(request: Request, hold_token: str) -> dict[str, Any]:
    """The holder and admission arguments of a command on a hold (the hold's event is in
    its token: its waiting room, if on, needs the buyer's pass)."""
    holder = buyer_id_get(request)
    event_id = services.hold_token_event_id(hold_token)
    return {
        "holder": holder,
        "admitted": pass_valid(request.COOKIES, event_id=event_id, buyer=holder),
    }


class HoldExtendApi(CommandApi):
    command = "extend"

    @extend_schema(request=None)
    def post(self, request: Request, hold_token: str) -> Response:
        expires_at = services.hold_extend(token=hold_token, **hold_buyer(request, hold_token))
        return Response({"hold_token": hold_token, "expires_at": expires_at})


class HoldReleaseApi(CommandApi):
    """Release every seat of the hold (`{}`) or some of them (`{"seats": [...]}`)."""

    command = "release"

    @extend_schema_serializer(component_name="ReleaseRequest")
    class InputSerializer(serializers.Serializer):
        seats = SeatListField(required=False)

    @extend_schema(request=InputSerializer)
    def post(self, request: Request, hold_token: str) -> Response:
        # Releasing everything must be asked for ({}): a body lost on the way (a client that
        # sent none, a framing the server could not read) must not free every seat.
        if not body_sent(request):
            raise ParseError('A release needs a body: {} for every seat, or {"seats": [...]}.')
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.hold_release(
            token=hold_token,
            seats=data.validated_data.get("seats"),
            **hold_buyer(request, hold_token),
        )
        return Response({"seats": result["seats"], "seq": result["seq"]})


class HoldReserveApi(CommandApi):
    command = "reserve"

    @extend_schema_serializer(component_name="Confirmation")
    class OutputSerializer(serializers.Serializer):
        reservation_id = serializers.CharField()
        event_id = serializers.IntegerField()
        seats = serializers.ListField(child=serializers.CharField())
        seq = serializers.IntegerField()

    @extend_schema(request=None, responses={201: OutputSerializer})
    def post(self, request: Request, hold_token: str) -> Response:
        confirmation = services.hold_reserve(token=hold_token, **hold_buyer(request, hold_token))
        return Response(self.OutputSerializer(confirmation).data, status=status.HTTP_201_CREATED)


class StaffCommandApi(CommandApi):
    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="SeatsRequest")
    class SeatsSerializer(serializers.Serializer):
        seats = SeatListField()


class SeatsBlockApi(StaffCommandApi):
    """Take free seats off sale (`/block`), or put blocked ones back (`/unblock`)."""

    command = "block"

    change = staticmethod(services.seats_block)

    @extend_schema(request=StaffCommandApi.SeatsSerializer)
    def post(self, request: Request, event_id: int) -> Response:
        event = get_object_or_404(Event, pk=event_id)
        data = self.SeatsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        seq = self.change(event=event, seats=data.validated_data["seats"])
        return Response({"seats": data.validated_data["seats"], "seq": seq})


class SeatsUnblockApi(SeatsBlockApi):
    command = "unblock"

    change = staticmethod(services.seats_unblock)


class ReservationCancelApi(StaffCommandApi):
    command = "cancel"

    @extend_schema(request=None)
    def post(self, request: Request, event_id: int, reservation_id: str) -> Response:
        seq = services.reservation_cancel(event_id=event_id, reservation_id=reservation_id)
        return Response({"reservation_id": reservation_id, "seq": seq})
