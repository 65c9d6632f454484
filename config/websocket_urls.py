"""WebSocket routes, the Channels counterpart of config/urls.py."""

websocket_urlpatterns: list = []
