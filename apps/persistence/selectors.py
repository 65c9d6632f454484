"""Reads of the persistence projection."""

import uuid

from apps.persistence.models import Reservation


def reservation_get(*, reservation_id: str) -> Reservation | None:
    """The reservation as recorded, with its seats; None for an unknown or malformed id."""
    try:
        pk = uuid.UUID(reservation_id)
    except ValueError:
        return None
    return Reservation.objects.prefetch_related("seats").filter(pk=pk).first()
