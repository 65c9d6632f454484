from django.apps import AppConfig


class StatsConfig(AppConfig):
    """Stats projector and stats read API."""

    name = "apps.stats"
    label = "stats"
