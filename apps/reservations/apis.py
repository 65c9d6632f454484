"""HTTP API of the write side and its catalog (docs/api.md). Thin over services."""

import re
import time
from functools import lru_cache
from typing import Any, ClassVar

from django.http import Http404, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.addresses import client_address
from apps.core.door import BuyerRateThrottle
from apps.core.exceptions import ErrorCodes, error_responses
from apps.core.http import CommandJSONParser, body_sent, buyer_id_get
from apps.core.idempotency import HEADER as IDEMPOTENCY_KEY
from apps.core.idempotency import MAX_KEY_LENGTH
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


@extend_schema_serializer(component_name="Event")
class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    starts_at = serializers.DateTimeField()
    sale_status = serializers.ChoiceField(  # drafts are not public
        choices=[Event.SaleStatus.ON_SALE.value, Event.SaleStatus.CLOSED.value]
    )
    venue = serializers.CharField(source="venue_name")
    hold_ttl_seconds = serializers.IntegerField()
    max_seats_per_hold = serializers.IntegerField()


class EventListApi(APIView):
    """Events that are on sale or have been."""

    @extend_schema(operation_id="events_list", responses={200: EventOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(EventOutputSerializer(event_list(), many=True).data)


@lru_cache(maxsize=256)
def _event_json(event: PublicEvent) -> bytes:
    """The event's JSON body, encoded once per process for each version of the event."""
    return JSONRenderer().render(EventOutputSerializer(event).data)


class EventDetailApi(APIView):
    """Every buyer opening the map asks for it: JSON clients get bytes encoded once per
    process (a changed event is another key of the memo); the browsable API renders."""

    @extend_schema(responses={200: EventOutputSerializer, **error_responses({404: ["not_found"]})})
    def get(self, request: Request, event_id: int) -> HttpResponseBase:
        event = event_public_get(event_id=event_id)
        if event is None:
            raise Http404
        if isinstance(request.accepted_renderer, JSONRenderer):
            return HttpResponse(_event_json(event), content_type="application/json")
        return Response(EventOutputSerializer(event).data)


@extend_schema_field(
    {
        "type": "array",
        "description": "[key, row, number, x, y, accessible]",
        "minItems": 6,
        "maxItems": 6,
        "items": {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
    }
)
class LayoutSeatField(serializers.ListField):
    """One seat of the layout: a list, not an object (a stadium's 50,000 seats as objects
    would be several times larger)."""


@extend_schema_serializer(component_name="EventLayout")
class LayoutOutputSerializer(serializers.Serializer):
    """The layout as served. Describes it only: selectors.event_layout builds and encodes
    the body once per process, and the view sends those bytes."""

    @extend_schema_serializer(component_name="FocalPoint")
    class FocalPointSerializer(serializers.Serializer):
        x = serializers.FloatField()
        y = serializers.FloatField()

    @extend_schema_serializer(component_name="LayoutCategory")
    class CategorySerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        price = serializers.DecimalField(max_digits=10, decimal_places=2)
        color = serializers.CharField()

    @extend_schema_serializer(component_name="LayoutSection")
    class SectionSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        category_id = serializers.IntegerField()
        seats = serializers.ListField(child=LayoutSeatField())

    event_id = serializers.IntegerField()
    venue = serializers.CharField()
    currency = serializers.CharField()
    focal_point = FocalPointSerializer(help_text="The stage, in the venue's units.")
    categories = CategorySerializer(many=True)
    sections = SectionSerializer(many=True)


class EventLayoutApi(APIView):
    """What the seat map draws (docs/api.md, Seat map layout). It cannot change while the
    event is on sale, so browsers keep it for a few minutes and revalidate by ETag. JSON
    clients get the bytes encoded (and gzipped) once per process; the browsable API renders
    as usual."""

    @extend_schema(
        responses={
            200: LayoutOutputSerializer,
            304: OpenApiResponse(description="Not modified: the `If-None-Match` ETag is current."),
            **error_responses({404: ["not_found"]}),
        }
    )
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


# The errors of the commands (docs/api.md, Errors), in the schema of each: those of every
# command (the door, CSRF and staff permissions, the body's framing: apps/core/http.py),
# of those with an Idempotency-Key (apps/core/idempotency.py), of those with a JSON body,
# of a buyer's (the first one makes their session; a waiting room may be on), and of a
# command on a hold.
COMMAND_ERRORS: ErrorCodes = {
    400: ["parse_error"],
    403: ["permission_denied", "not_authenticated"],
    411: ["length_required"],
    413: ["too_large"],
    429: ["throttled"],
}
IDEMPOTENT_ERRORS: ErrorCodes = {
    400: ["invalid_idempotency_key"],
    409: ["idempotency_key_in_flight"],
    422: ["idempotency_key_reused"],
}
BODY_ERRORS: ErrorCodes = {400: ["invalid"], 415: ["unsupported_media_type"]}
BUYER_ERRORS: ErrorCodes = {403: ["not_admitted"], 429: ["too_many_new_buyers"]}
HOLD_ERRORS: ErrorCodes = {403: ["not_hold_owner"], 404: ["hold_not_found"], 410: ["hold_expired"]}

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_KEY,
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    OpenApiParameter.HEADER,
    description="A repeat with the same key and body gets the first response again "
    "(`Idempotent-Replayed: true`), for an hour (docs/api.md, Buyer commands).",
)


def command_schema(
    *errors: ErrorCodes,
    request: type[serializers.Serializer] | None,
    reply: tuple[int, type[serializers.Serializer]],
) -> Any:
    """``extend_schema`` of an idempotent command: its body, its reply and every error it
    may answer (``errors``, its own, and those of every command)."""
    groups = [COMMAND_ERRORS, IDEMPOTENT_ERRORS, *errors]
    if request is not None:
        groups.append(BODY_ERRORS)
    return extend_schema(
        request=request,
        responses={reply[0]: reply[1], **error_responses(*groups)},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
    )


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


@extend_schema_serializer(component_name="BestRequest")
class BestSerializer(serializers.Serializer):
    """Best available: ``count`` seats side by side if any row has them, in ``section`` or
    ``category`` if given (docs/architecture.md, Best available)."""

    count = serializers.IntegerField(min_value=1, max_value=MAX_SEATS_PER_COMMAND)
    section = serializers.IntegerField(required=False, help_text="A section's id.")
    category = serializers.IntegerField(required=False, help_text="A price category's id.")

    def validate(self, attrs: dict) -> services.BestRequest:
        return services.BestRequest(
            count=attrs["count"],
            section_id=attrs.get("section"),
            category_id=attrs.get("category"),
        )


class HoldCreateApi(CommandApi):
    """Hold seats: `{"seats": [...]}` or `{"best": {"count": 2, "section": 3}}`."""

    command = "hold"

    # Named for the schema: every view's serializers are called Input and Output.
    @extend_schema_serializer(component_name="HoldRequest")
    class InputSerializer(serializers.Serializer):
        """Either ``seats`` or ``best``, not both."""

        seats = SeatListField(required=False, help_text="These seats, all or none.")
        best = BestSerializer(required=False)

        def validate(self, attrs: dict) -> dict:
            if ("seats" in attrs) == ("best" in attrs):
                raise serializers.ValidationError('Give either "seats" or "best".')
            return attrs

    @extend_schema_serializer(component_name="Hold")
    class OutputSerializer(serializers.Serializer):
        hold_token = serializers.CharField(source="token")
        event_id = serializers.IntegerField()
        seats = serializers.ListField(child=serializers.CharField())
        expires_at = serializers.DateTimeField()
        seq = serializers.IntegerField()

    @command_schema(
        BUYER_ERRORS,
        {
            400: ["unknown_seats", "duplicate_seats"],
            404: ["not_found"],
            409: ["seats_unavailable", "sale_not_open", "sale_closed"],
            422: ["hold_limit_exceeded", "address_limit_exceeded"],
        },
        request=InputSerializer,
        reply=(201, OutputSerializer),
    )
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
    """Push the hold's expiry out by the event's hold time; never past 3 times that time
    after the hold was made (services.MAX_HOLD_TTLS)."""

    command = "extend"

    @extend_schema_serializer(component_name="HoldExtension")
    class OutputSerializer(serializers.Serializer):
        hold_token = serializers.CharField(source="token")
        expires_at = serializers.DateTimeField()

    @command_schema(BUYER_ERRORS, HOLD_ERRORS, request=None, reply=(200, OutputSerializer))
    def post(self, request: Request, hold_token: str) -> Response:
        extension = services.hold_extend(token=hold_token, **hold_buyer(request, hold_token))
        return Response(self.OutputSerializer(extension).data)


class HoldReleaseApi(CommandApi):
    """Release every seat of the hold (`{}`) or some of them (`{"seats": [...]}`)."""

    command = "release"

    @extend_schema_serializer(component_name="ReleaseRequest")
    class InputSerializer(serializers.Serializer):
        seats = SeatListField(required=False, help_text="These seats of the hold; all if absent.")

    @extend_schema_serializer(component_name="Release")
    class OutputSerializer(serializers.Serializer):
        seats = serializers.ListField(child=serializers.CharField(), help_text="Released.")
        seq = serializers.IntegerField()

    @command_schema(
        BUYER_ERRORS,
        HOLD_ERRORS,
        {400: ["duplicate_seats", "seats_not_in_hold"]},
        request=InputSerializer,
        reply=(200, OutputSerializer),
    )
    def post(self, request: Request, hold_token: str) -> Response:
        # Releasing everything must be asked for ({}): a body lost on the way (a client that
        # sent none, a framing the server could not read) must not free every seat.
        if not body_sent(request):
            raise ParseError('A release needs a body: {} for every seat, or {"seats": [...]}.')
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = services.hold_release(
            token=hold_token,
            seats=data.validated_data.get("seats"),
            **hold_buyer(request, hold_token),
        )
        return Response(self.OutputSerializer(release).data)


class HoldReserveApi(CommandApi):
    """Buy the hold's seats: the hold becomes a reservation."""

    command = "reserve"

    @extend_schema_serializer(component_name="Confirmation")
    class OutputSerializer(serializers.Serializer):
        reservation_id = serializers.CharField()
        event_id = serializers.IntegerField()
        seats = serializers.ListField(child=serializers.CharField())
        seq = serializers.IntegerField()

    @command_schema(BUYER_ERRORS, HOLD_ERRORS, request=None, reply=(201, OutputSerializer))
    def post(self, request: Request, hold_token: str) -> Response:
        confirmation = services.hold_reserve(token=hold_token, **hold_buyer(request, hold_token))
        return Response(self.OutputSerializer(confirmation).data, status=status.HTTP_201_CREATED)


class StaffCommandApi(CommandApi):
    """Base of the staff commands (staff users only)."""

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="SeatsRequest")
    class SeatsSerializer(serializers.Serializer):
        seats = SeatListField()

    @extend_schema_serializer(component_name="SeatsChange")
    class SeatsChangeSerializer(serializers.Serializer):
        seats = serializers.ListField(child=serializers.CharField())
        seq = serializers.IntegerField()


class SeatsBlockApi(StaffCommandApi):
    """Take free seats off sale (staff)."""

    command = "block"

    change = staticmethod(services.seats_block)

    @command_schema(
        {
            400: ["unknown_seats", "duplicate_seats"],
            404: ["not_found"],
            409: ["seats_unavailable", "sale_not_open"],
        },
        request=StaffCommandApi.SeatsSerializer,
        reply=(200, StaffCommandApi.SeatsChangeSerializer),
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = get_object_or_404(Event, pk=event_id)
        data = self.SeatsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = self.change(event=event, seats=data.validated_data["seats"])
        return Response(self.SeatsChangeSerializer(change).data)


@extend_schema_view(
    post=command_schema(
        {
            400: ["duplicate_seats"],
            404: ["not_found"],
            409: ["seats_not_blocked", "sale_not_open"],
        },
        request=StaffCommandApi.SeatsSerializer,
        reply=(200, StaffCommandApi.SeatsChangeSerializer),
    )
)
class SeatsUnblockApi(SeatsBlockApi):
    """Put blocked seats back on sale (staff)."""

    command = "unblock"

    change = staticmethod(services.seats_unblock)


class ReservationCancelApi(StaffCommandApi):
    """Cancel a reservation: its seats are on sale again (staff)."""

    command = "cancel"

    @extend_schema_serializer(component_name="Cancellation")
    class OutputSerializer(serializers.Serializer):
        reservation_id = serializers.CharField()
        seq = serializers.IntegerField()

    @command_schema(
        {404: ["reservation_not_found"], 409: ["reservation_cancelled"]},
        request=None,
        reply=(200, OutputSerializer),
    )
    def post(self, request: Request, event_id: int, reservation_id: str) -> Response:
        cancellation = services.reservation_cancel(event_id=event_id, reservation_id=reservation_id)
        return Response(self.OutputSerializer(cancellation).data)
