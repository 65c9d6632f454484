"""Read API of the persistence projection (docs/api.md, Reservations)."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import error_responses
from apps.core.http import buyer_id_get
from apps.persistence.models import Reservation
from apps.persistence.selectors import reservation_get


class ReservationDetailApi(APIView):
    """A reservation as recorded. Only its holder and staff may see it; to anyone else it
    does not exist (404, not 403: a reservation id must not be confirmable by guessing)."""

    @extend_schema_serializer(component_name="Reservation")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ReservedSeat")
        class SeatSerializer(serializers.Serializer):
            seat = serializers.CharField(source="seat_key")
            price = serializers.DecimalField(max_digits=10, decimal_places=2)

        id = serializers.UUIDField()
        event_id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=Reservation.Status.choices)
        seats = SeatSerializer(many=True, source="seats.all")
        total = serializers.DecimalField(max_digits=12, decimal_places=2)
        created_at = serializers.DateTimeField()
        cancelled_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(responses={200: OutputSerializer, **error_responses({404: ["not_found"]})})
    def get(self, request: Request, reservation_id: str) -> Response:
        reservation = reservation_get(reservation_id=reservation_id)
        if reservation is None or not _may_see(request, reservation):
            raise NotFound("No such reservation.")
        return Response(self.OutputSerializer(reservation).data)


def _may_see(request: Request, reservation: Reservation) -> bool:
    if request.user.is_staff:
        return True
    # A visitor without a session cannot hold anything; asking buyer_id_get would create a
    # session for them just to say no.
    if not request.user.is_authenticated and request.session.session_key is None:
        return False
    return buyer_id_get(request) == reservation.holder
