"""Helpers for the persistence tests: drive the real write side, read what it emitted."""

import uuid
from datetime import UTC, datetime

from apps.core.envelopes import Envelope, envelope_parse
from apps.core.redis import redis_client_get
from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.redis.keys import event_keys


def reserve(event: Event, seats: list[str], holder: str = "user:1") -> str:
    """Hold and confirm through the write side; returns the reservation id."""
    hold = services.hold_create(event_id=event.pk, holder=holder, seats=seats)
    return services.hold_reserve(token=hold.token, holder=holder).reservation_id


def outbox_envelopes(event: Event) -> list[Envelope]:
    """What the write side emitted for ``event`` that no relay has published yet.

    Reads the write side's outbox stream directly, as the relay does; tests only.
    """
    entries = redis_client_get().xrange(event_keys(event.pk).outbox)
    return [envelope_parse(fields["envelope"]) for _, fields in entries]


def outbox_last(event: Event, type_: str) -> Envelope:
    return [e for e in outbox_envelopes(event) if e.type == type_][-1]


def reserved_envelope(
    *, event_id: int, seq: int, seats: list[str], prices: list[int], holder: str = "user:1"
) -> dict:
    """A hand-made seat.reserved (docs/architecture.md), for what the write side never emits."""
    return {
        "id": str(uuid.uuid4()),
        "type": "seat.reserved",
        "event_id": event_id,
        "seq": seq,
        "occurred_at": datetime.now(tz=UTC).isoformat(),
        "data": {
            "seats": seats,
            "reservation_id": str(uuid.uuid4()),
            "hold_token": f"{event_id}.handmade",
            "holder": holder,
            "price_cents": prices,
            "total_cents": sum(prices),
        },
    }


def cancelled_envelope(
    *, event_id: int, seq: int, reservation_id: str, seats: list[str] | None = None
) -> dict:
    """A hand-made seat.released (reason cancelled), as the write side emits it."""
    return {
        "id": str(uuid.uuid4()),
        "type": "seat.released",
        "event_id": event_id,
        "seq": seq,
        "occurred_at": datetime.now(tz=UTC).isoformat(),
        "data": {"seats": seats or [], "reason": "cancelled", "reservation_id": reservation_id},
    }
