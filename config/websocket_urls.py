"""WebSocket routes, the Channels counterpart of config/urls.py."""

from apps.gateway.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
