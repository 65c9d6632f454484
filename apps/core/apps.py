from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Plumbing shared by every app: Redis and Kafka clients, the API error shape."""

    name = "apps.core"
    label = "core"
