"""WebSocket routes of the gateway (mounted by config/websocket_urls.py)."""

from django.urls import path

from apps.gateway.consumers import EventSocketConsumer

websocket_urlpatterns = [
    path("ws/events/<int:event_id>/", EventSocketConsumer.as_asgi()),
]
