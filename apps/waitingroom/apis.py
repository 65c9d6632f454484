"""HTTP API of the waiting room (docs/api.md, Waiting room). Thin over services."""

from typing import Any

from django.conf import settings
from django.http import Http404, HttpResponseBase
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.addresses import client_address
from apps.core.exceptions import ErrorSerializer, error_responses
from apps.core.http import buyer_id_get, buyer_id_peek
from apps.reservations.apis import BUYER_ERRORS, COMMAND_ERRORS, CommandApi
from apps.reservations.selectors import event_public_get
from apps.waitingroom import services
from apps.waitingroom.passes import pass_cookie_name
from apps.waitingroom.selectors import room_status


class PlaceSerializer(serializers.Serializer):
    ticket = serializers.IntegerField(
        allow_null=True, help_text="Your number in the queue; null until the start's draw."
    )
    position = serializers.IntegerField(
        allow_null=True, help_text="1 when you are next; 0 once admitted."
    )
    ahead = serializers.IntegerField(allow_null=True)
    eta_seconds = serializers.IntegerField(allow_null=True)
    admitted = serializers.BooleanField()
    pass_expires_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="WaitingRoom")
class RoomOutputSerializer(serializers.Serializer):
    event_id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["off", "before", "open", "paused"])
    sale_starts_at = serializers.DateTimeField(allow_null=True)
    drawn = serializers.BooleanField()
    serving = serializers.IntegerField(help_text="Tickets up to this one are admitted.")
    waiting = serializers.IntegerField()
    rate_per_minute = serializers.IntegerField()
    place = PlaceSerializer(allow_null=True)


@extend_schema_serializer(component_name="NotYourTurnError")
class NotYourTurnErrorSerializer(ErrorSerializer):
    """The Error body, and with `not_your_turn` the room where the buyer waits."""

    room = RoomOutputSerializer(
        required=False, help_text="`not_your_turn`: the room as `GET` shows it, with your place."
    )


def _event_check(event_id: int) -> None:
    if event_public_get(event_id=event_id) is None:
        raise Http404


class RoomApi(CommandApi):
    """GET: the room as you see it. POST: take your place (one per buyer)."""

    command = "join"

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "GET":  # a read: not counted as a command
            return APIView.dispatch(self, request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get_throttles(self):  # type: ignore[no-untyped-def]
        # Reading is not a command: the socket pushes changes, this is for a first look.
        return [] if self.request.method == "GET" else super().get_throttles()

    @extend_schema(responses={200: RoomOutputSerializer, **error_responses({404: ["not_found"]})})
    def get(self, request: Request, event_id: int) -> Response:
        _event_check(event_id)
        return Response(room_status(event_id=event_id, buyer=buyer_id_peek(request)))

    @extend_schema(
        request=None,
        responses={
            200: RoomOutputSerializer,
            **error_responses(
                COMMAND_ERRORS, BUYER_ERRORS, {404: ["not_found"], 429: ["too_many_places"]}
            ),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        _event_check(event_id)
        if buyer_id_peek(request) is None:
            # The seat map app joins on every event it opens: where no room is on, a
            # visitor gets no session for it (sessions are made by a first command).
            status = room_status(event_id=event_id, buyer=None)
            if status["state"] == "off":
                return Response(status)
        status = services.room_join(
            event_id=event_id, buyer=buyer_id_get(request), address=client_address(request)
        )
        return Response(status)


@extend_schema_serializer(component_name="WaitingRoomPass")
class PassOutputSerializer(serializers.Serializer):
    needed = serializers.BooleanField(help_text="False when the event has no waiting room on.")
    expires_at = serializers.DateTimeField(allow_null=True)


class RoomPassApi(CommandApi):
    """Take your pass once admitted: a cookie that lets your commands on the event through."""

    command = "pass"

    @extend_schema(
        request=None,
        responses={
            200: PassOutputSerializer,
            **error_responses(
                COMMAND_ERRORS,
                {
                    404: ["not_found", "not_in_queue"],
                    409: ["not_your_turn"],
                    410: ["place_expired"],
                },
                shapes={409: NotYourTurnErrorSerializer},
            ),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        _event_check(event_id)
        # Without a session there is no place (404 not_in_queue), unless no room is on and
        # no pass is needed: the claim script says which ("" is nobody's buyer id).
        buyer = buyer_id_peek(request) or ""
        room_pass = services.room_pass_claim(event_id=event_id, buyer=buyer)
        if room_pass is None:
            return Response({"needed": False, "expires_at": None})
        response = Response({"needed": True, "expires_at": room_pass.expires_at})
        response.set_cookie(
            pass_cookie_name(event_id),
            room_pass.token,
            max_age=room_pass.max_age_s,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
        return response
