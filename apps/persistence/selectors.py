"""Reads of the persistence projection."""

import uuid
from decimal import Decimal

from django.db.models import Sum

from apps.persistence.models import Reservation, ReservedSeat


def reservation_get(*, reservation_id: str) -> Reservation | None:
    """The reservation as recorded, with its seats; None for an unknown or malformed id."""
    try:
        pk = uuid.UUID(reservation_id)
    except ValueError:
        return None
    return Reservation.objects.prefetch_related("seats").filter(pk=pk).first()


def event_reserved_seats(*, event_id: int) -> dict[str, str]:
    """Seat key → reservation id of every seat sold (and not cancelled) in the event."""
    return {
        seat: str(reservation_id)
        for seat, reservation_id in ReservedSeat.objects.filter(
            event_id=event_id, active=True
        ).values_list("seat_key", "reservation_id")
    }


def event_revenue(*, event_id: int) -> Decimal:
    """The sum of the prices of the event's sold, not cancelled, seats."""
    total = ReservedSeat.objects.filter(event_id=event_id, active=True).aggregate(
        total=Sum("price")
    )["total"]
    return total or Decimal("0.00")
