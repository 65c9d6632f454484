from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import error_responses
from apps.stats.selectors import event_stats_get, section_stats_get


class _CountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    free = serializers.IntegerField()
    held = serializers.IntegerField()
    reserved = serializers.IntegerField()
    blocked = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)


class EventStatsApi(APIView):
    """Seat counts and revenue of an event and of each of its sections (docs/api.md)."""

    @extend_schema_serializer(component_name="EventStats")
    class OutputSerializer(_CountsSerializer):
        @extend_schema_serializer(component_name="EventStatsSection")
        class SectionSerializer(_CountsSerializer):
            section_id = serializers.IntegerField()
            name = serializers.CharField()

        event_id = serializers.IntegerField()
        seq = serializers.IntegerField()
        sections = SectionSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer, **error_responses({404: ["not_found"]})})
    def get(self, request: Request, event_id: int) -> Response:
        stats = event_stats_get(event_id=event_id)
        if stats is None:
            raise NotFound("No such event.")
        return Response(self.OutputSerializer(stats).data)


class SectionStatsApi(APIView):
    """Seat counts and revenue of one section of an event."""

    @extend_schema_serializer(component_name="SectionStats")
    class OutputSerializer(_CountsSerializer):
        event_id = serializers.IntegerField()
        seq = serializers.IntegerField()
        section_id = serializers.IntegerField()
        name = serializers.CharField()

    @extend_schema(responses={200: OutputSerializer, **error_responses({404: ["not_found"]})})
    def get(self, request: Request, event_id: int, section_id: int) -> Response:
        stats = section_stats_get(event_id=event_id, section_id=section_id)
        if stats is None:
            raise NotFound("No such event or section.")
        return Response(self.OutputSerializer(stats).data)
