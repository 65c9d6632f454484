from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    """Reservation write side: catalog, Redis inventory, outbox relay, command API."""

    name = "apps.reservations"
    label = "reservations"

    def ready(self) -> None:
        from apps.reservations import signals  # noqa: F401 - connects the receivers
