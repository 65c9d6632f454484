from django.http import Http404
from django.utils.decorators import method_decorator
from django.views.decorators.gzip import gzip_page
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import error_responses
from apps.core.http import buyer_id_peek
from apps.reservations.selectors import event_public_get
from apps.seatstate.selectors import STATE_CODES, seat_map_get


@extend_schema_serializer(component_name="SeatMap")
class SeatMapOutputSerializer(serializers.Serializer):
    """The seat map as served. Describes it only: the view writes the dict itself, as a
    stadium's map has thousands of rows to go through on every request."""

    @extend_schema_serializer(component_name="SeatMapSection")
    class SectionSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="SeatMapRow")
        class RowSerializer(serializers.Serializer):
            row = serializers.CharField()
            numbers = serializers.ListField(child=serializers.IntegerField())
            states = serializers.CharField(
                help_text="One character per seat, in the order of `numbers` (see `legend`)."
            )

        section_id = serializers.IntegerField()
        name = serializers.CharField()
        rows = RowSerializer(many=True)

    event_id = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The states are those after this seq.")
    sale_status = serializers.ChoiceField(choices=["on_sale", "closed"])
    legend = serializers.DictField(
        child=serializers.CharField(), help_text="State character → state."
    )
    sections = SectionSerializer(many=True)


# gzip: a stadium's state strings compress ~10x; the response holds no secret that
# BREACH-style attacks could extract.
@method_decorator(gzip_page, name="dispatch")
class SeatMapApi(APIView):
    """Every seat's state and the `seq` it is consistent with (docs/api.md, Seat map)."""

    class FilterSerializer(serializers.Serializer):
        section = serializers.IntegerField(required=False, help_text="Only this section.")

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: SeatMapOutputSerializer,
            **error_responses({400: ["invalid"], 404: ["not_found"], 409: ["sale_not_open"]}),
        },
    )
    def get(self, request: Request, event_id: int) -> Response:
        if event_public_get(event_id=event_id) is None:
            raise Http404
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        section_id = filters.validated_data.get("section")
        seat_map = seat_map_get(
            event_id=event_id, buyer=buyer_id_peek(request), section_id=section_id
        )
        if section_id is not None and not seat_map.sections:
            return Response(
                {"code": "not_found", "detail": "No such section in this event."}, status=404
            )
        return Response(
            {
                "event_id": seat_map.event_id,
                "seq": seat_map.seq,
                "sale_status": seat_map.sale_status,
                "legend": {code: state for state, code in STATE_CODES.items()},
                "sections": seat_map.sections,
            }
        )
