"""HTTP API of the write side and its catalog (DESIGN.md, HTTP API)."""

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.reservations.selectors import event_list


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    starts_at = serializers.DateTimeField()
    sale_status = serializers.CharField()
    venue = serializers.CharField(source="venue.name")
    hold_ttl_seconds = serializers.IntegerField()
    max_seats_per_hold = serializers.IntegerField()


class EventListApi(APIView):
    """Events that are on sale or have been."""

    def get(self, request: Request) -> Response:
        return Response(EventOutputSerializer(event_list(), many=True).data)


class EventDetailApi(APIView):
    def get(self, request: Request, event_id: int) -> Response:
        event = get_object_or_404(event_list(), pk=event_id)
        return Response(EventOutputSerializer(event).data)
