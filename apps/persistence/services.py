"""Write services of the persistence projection, one per event type it records.

Each takes the envelope as delivered. They run inside the consumer's batch transaction
(apps.core.consumers), which already skips envelopes applied before; they are idempotent on
their own as well, so replaying a dead letter by hand is safe.
"""

import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.core.consumers import Envelope
from apps.persistence.models import Reservation, ReservedSeat


class EnvelopeDataInvalid(ValueError):
    """The envelope's ``data`` lacks what the projection needs; it is dead-lettered."""


class ReservationNotRecorded(LookupError):
    """A cancellation for a reservation this projection never recorded.

    Only possible when its seat.reserved was dead-lettered or lost: the cancellation is
    dead-lettered too, to be replayed after that one.
    """


def _cents(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def _reservation_id(data: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(data["reservation_id"]))
    except (KeyError, ValueError) as exc:
        raise EnvelopeDataInvalid(f"reservation_id missing or not a UUID: {exc}") from exc


def _reserved_data(data: dict[str, Any]) -> tuple[list[str], list[int], int, str]:
    seats, prices = data.get("seats"), data.get("price_cents")
    total, holder = data.get("total_cents"), data.get("holder")
    if not isinstance(seats, list) or not seats or not all(isinstance(s, str) for s in seats):
        raise EnvelopeDataInvalid("seats must be a non-empty list of seat keys")
    if len(set(seats)) != len(seats):
        raise EnvelopeDataInvalid("a seat is listed twice")
    if (
        not isinstance(prices, list)
        or len(prices) != len(seats)
        or not all(type(p) is int and p >= 0 for p in prices)
    ):
        raise EnvelopeDataInvalid("price_cents must hold one non-negative integer per seat")
    if type(total) is not int or total != sum(prices):
        raise EnvelopeDataInvalid("total_cents must be the sum of price_cents")
    if not isinstance(holder, str) or not holder:
        raise EnvelopeDataInvalid("holder must be a non-empty string")
    return seats, prices, total, holder


@transaction.atomic
def reservation_record(*, envelope: Envelope) -> Reservation:
    """Record a ``seat.reserved``: the reservation and one active row per seat.

    A seat already sold to another live reservation of the event makes the database refuse
    the rows (IntegrityError), so a double sale can never be recorded silently.
    """
    data = envelope.data
    reservation_id = _reservation_id(data)
    seats, prices, total, holder = _reserved_data(data)
    existing = Reservation.objects.filter(pk=reservation_id).first()
    if existing is not None:
        return existing  # recorded before (a replayed dead letter)
    reservation = Reservation.objects.create(
        id=reservation_id,
        event_id=envelope.event_id,
        holder=holder,
        total=_cents(total),
        status=Reservation.Status.RESERVED,
        created_at=envelope.occurred_at,
        seq=envelope.seq,
    )
    ReservedSeat.objects.bulk_create(
        ReservedSeat(
            reservation=reservation, event_id=envelope.event_id, seat_key=seat, price=_cents(cents)
        )
        for seat, cents in zip(seats, prices, strict=True)
    )
    return reservation


@transaction.atomic
def reservation_cancel_record(*, envelope: Envelope) -> Reservation:
    """Record a ``seat.released`` with reason ``cancelled``: the seats may be sold again."""
    reservation_id = _reservation_id(envelope.data)
    reservation = (
        Reservation.objects.select_for_update()
        .filter(pk=reservation_id, event_id=envelope.event_id)
        .first()
    )
    if reservation is None:
        raise ReservationNotRecorded(
            f"reservation {reservation_id} of event {envelope.event_id} was never recorded"
        )
    if reservation.status == Reservation.Status.CANCELLED:
        return reservation
    reservation.status = Reservation.Status.CANCELLED
    reservation.cancelled_at = envelope.occurred_at
    reservation.save(update_fields=["status", "cancelled_at"])
    reservation.seats.update(active=False)
    return reservation
