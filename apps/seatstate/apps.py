from django.apps import AppConfig


class SeatstateConfig(AppConfig):
    """Seat state read: the seat map snapshot, straight from Redis."""

    name = "apps.seatstate"
    label = "seatstate"
