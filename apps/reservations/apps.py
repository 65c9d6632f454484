from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    """Reservation write side: catalog, Redis inventory, outbox relay, command API."""

    name = "apps.reservations"
    label = "reservations"
