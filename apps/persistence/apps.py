from django.apps import AppConfig


class PersistenceConfig(AppConfig):
    """Reservation persistence: reservations as recorded from seat.reserved events."""

    name = "apps.persistence"
    label = "persistence"
