from django.apps import AppConfig


class WaitingRoomConfig(AppConfig):
    """The virtual waiting room in front of an on-sale: fair order, admission at a set rate,
    passes (docs/architecture.md, Waiting room)."""

    name = "apps.waitingroom"
    label = "waitingroom"
    verbose_name = "Waiting rooms"
