from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """Gateway: WebSockets to browsers, the Kafka to channel-layer bridge."""

    name = "apps.gateway"
    label = "gateway"
