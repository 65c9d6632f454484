"""Write services of the persistence projection: ``seat.reserved`` and ``seat.released``
(reason ``cancelled``) → Reservation and ReservedSeat rows.

``reservations_record`` takes a consumer's whole batch and writes it set-based, in a few
statements whatever its size; the single-envelope services are the same code on a batch of
one. They run inside the consumer's batch transaction (apps/core/projections.py), which already
skips envelopes applied before; they are idempotent on their own as well, so replaying a
dead letter by hand is safe.
"""

import itertools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from apps.core.envelopes import Envelope
from apps.persistence.models import Reservation, ReservedSeat


class EnvelopeDataInvalid(ValueError):
    """The envelope's ``data`` lacks what the projection needs; it is dead-lettered."""


class ReservationNotRecorded(LookupError):
    """A cancellation for a reservation this projection never recorded.

    Only possible when its seat.reserved was dead-lettered or lost: the cancellation is
    dead-lettered too, to be replayed after that one.
    """


@dataclass(frozen=True)
class _Sale:
    """A ``seat.reserved``, checked: what its rows are made of."""

    id: uuid.UUID
    event_id: int
    holder: str
    total_cents: int
    created_at: datetime
    seq: int
    seats: list[str]
    prices_cents: list[int]


@dataclass(frozen=True)
class _Cancel:
    """A ``seat.released`` with reason ``cancelled``, checked."""

    id: uuid.UUID
    event_id: int
    at: datetime
    seats: list[str]  # as the envelope lists them: only to plan the batch's statements


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
def reservations_record(*, envelopes: Iterable[Envelope]) -> None:
    """Record a batch of seat events, in log order; types other than ``seat.reserved`` and
    ``seat.released`` (reason ``cancelled``) are skipped.

    Every envelope is checked before anything is written, and anything that cannot be
    recorded raises (bad data, a cancellation never recorded, a double sale refused by the
    database's IntegrityError), so the consumer's message-by-message retry can find and
    dead-letter that one alone.

    Usually two statements: every reservation, then every cancellation. Compared with one
    envelope at a time, writing the reservations first can only refuse more, never accept a
    double sale: every seat live at some point of the batch is still live when they are
    written. It would refuse more, or accept a cancellation before its own reservation, only
    in the cases ``_sales_first_is_exact`` looks for; those batches are written run by run
    (consecutive envelopes of one kind together) in log order instead.
    """
    batch = [item for envelope in envelopes if (item := _parse(envelope)) is not None]
    if _sales_first_is_exact(batch):
        _reservations_insert([item for item in batch if isinstance(item, _Sale)])
        _cancellations_update([item for item in batch if isinstance(item, _Cancel)])
        return
    for _, run in itertools.groupby(batch, key=type):
        items = list(run)  # of one kind: one of the two calls has nothing to write
        _reservations_insert([item for item in items if isinstance(item, _Sale)])
        _cancellations_update([item for item in items if isinstance(item, _Cancel)])


def reservation_record(*, envelope: Envelope) -> Reservation:
    """Record one ``seat.reserved``: the reservation and one active row per seat.

    A seat already sold to another live reservation of the event makes the database refuse
    the rows (IntegrityError), so a double sale can never be recorded silently.
    """
    sale = _sale(envelope)
    with transaction.atomic():
        _reservations_insert([sale])
    return Reservation.objects.get(pk=sale.id)


def reservation_cancel_record(*, envelope: Envelope) -> Reservation:
    """Record one ``seat.released`` with reason ``cancelled``: the seats may be sold again."""
    cancel = _cancel(envelope)
    with transaction.atomic():
        _cancellations_update([cancel])
    return Reservation.objects.get(pk=cancel.id)


def _parse(envelope: Envelope) -> _Sale | _Cancel | None:
    """The checked content of a reservation's envelope; None for the other seat events
    (holds, releases of holds, expiries, blocks)."""
    if envelope.type == "seat.reserved":
        return _sale(envelope)
    if envelope.type == "seat.released" and envelope.data.get("reason") == "cancelled":
        return _cancel(envelope)
    return None


def _sale(envelope: Envelope) -> _Sale:
    seats, prices, total, holder = _reserved_data(envelope.data)
    return _Sale(
        id=_reservation_id(envelope.data),
        event_id=envelope.event_id,
        holder=holder,
        total_cents=total,
        created_at=envelope.occurred_at,
        seq=envelope.seq,
        seats=seats,
        prices_cents=prices,
    )


def _cancel(envelope: Envelope) -> _Cancel:
    seats = envelope.data.get("seats")
    return _Cancel(
        id=_reservation_id(envelope.data),
        event_id=envelope.event_id,
        at=envelope.occurred_at,
        seats=[s for s in seats if isinstance(s, str)] if isinstance(seats, list) else [],
    )


def _sales_first_is_exact(batch: list[_Sale | _Cancel]) -> bool:
    """Whether writing the batch's reservations before its cancellations does what writing
    them in log order would: no seat freed by a cancellation is sold again later in the
    batch (reservations first would refuse that sale), and no reservation comes after its
    own cancellation (that cancellation must be refused as never recorded).

    Read from the envelopes; should a cancellation's seat list be wrong, the database still
    refuses the resale, the batch fails and the consumer retries it message by message.
    """
    cancelled: set[uuid.UUID] = set()
    freed: set[tuple[int, str]] = set()
    for item in batch:
        if isinstance(item, _Cancel):
            cancelled.add(item.id)
            freed.update((item.event_id, seat) for seat in item.seats)
        elif item.id in cancelled or any((item.event_id, seat) in freed for seat in item.seats):
            return False
    return True


# Each statement takes the batch as one JSON parameter read by json_to_recordset: one round
# trip and one plan whatever the batch's size, and no per-row work in the ORM or in psycopg
# (which adapts a Python list element by element).
_RESERVATIONS_INSERT = f"""
WITH recorded AS (
    INSERT INTO {Reservation._meta.db_table}
        (id, event_id, holder, total, status, created_at, seq)
    SELECT r.id, r.event_id, r.holder, r.total_cents::numeric / 100,
        '{Reservation.Status.RESERVED}', r.created_at, r.seq
    FROM json_to_recordset(%s::json) AS r(
        id uuid, event_id bigint, holder text, total_cents bigint, created_at timestamptz,
        seq bigint)
    -- Recorded before (a replayed dead letter): neither it nor its seats are written again.
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
-- No ON CONFLICT here: a seat with a live sale must fail the batch (uniq_active_seat_per_event).
INSERT INTO {ReservedSeat._meta.db_table} (reservation_id, event_id, seat_key, price, active)
SELECT s.reservation_id, s.event_id, s.seat_key, s.price_cents::numeric / 100, true
FROM json_to_recordset(%s::json) AS s(
    reservation_id uuid, event_id bigint, seat_key text, price_cents bigint)
JOIN recorded ON recorded.id = s.reservation_id
"""  # noqa: S608 - table names come from the models, values are parameters

_CANCELLATIONS_UPDATE = f"""
WITH cancel AS (
    SELECT * FROM json_to_recordset(%s::json) AS c(id uuid, event_id bigint, at timestamptz)
), cancelled AS (
    -- A reservation cancelled before keeps its first cancelled_at.
    UPDATE {Reservation._meta.db_table} r
    SET status = '{Reservation.Status.CANCELLED}', cancelled_at = cancel.at
    FROM cancel
    WHERE r.id = cancel.id AND r.event_id = cancel.event_id
        AND r.status = '{Reservation.Status.RESERVED}'
    RETURNING r.id
), freed AS (
    UPDATE {ReservedSeat._meta.db_table} s SET active = false
    FROM cancelled WHERE s.reservation_id = cancelled.id
)
-- The cancellations of reservations never recorded (this sees the rows as they were before
-- the statement, which is enough: it neither creates nor deletes reservations).
SELECT cancel.id FROM cancel
WHERE NOT EXISTS (
    SELECT 1 FROM {Reservation._meta.db_table} r
    WHERE r.id = cancel.id AND r.event_id = cancel.event_id
)
"""  # noqa: S608 - table names come from the models, values are parameters


def _reservations_insert(sales: list[_Sale]) -> None:
    if not sales:
        return
    first: dict[uuid.UUID, _Sale] = {}
    for sale in sales:
        first.setdefault(sale.id, sale)  # the same reservation twice in a batch: once
    reservations = [
        {
            "id": str(s.id),
            "event_id": s.event_id,
            "holder": s.holder,
            "total_cents": s.total_cents,
            "created_at": s.created_at.isoformat(),
            "seq": s.seq,
        }
        for s in first.values()
    ]
    seats = [
        {"reservation_id": str(s.id), "event_id": s.event_id, "seat_key": seat, "price_cents": c}
        for s in first.values()
        for seat, c in zip(s.seats, s.prices_cents, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_RESERVATIONS_INSERT, [json.dumps(reservations), json.dumps(seats)])


def _cancellations_update(cancels: list[_Cancel]) -> None:
    if not cancels:
        return
    first: dict[uuid.UUID, _Cancel] = {}
    for cancel in cancels:
        first.setdefault(cancel.id, cancel)  # cancelled twice in a batch: the first time counts
    rows = [
        {"id": str(c.id), "event_id": c.event_id, "at": c.at.isoformat()} for c in first.values()
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CANCELLATIONS_UPDATE, [json.dumps(rows)])
        missing = [row[0] for row in cursor.fetchall()]
    if missing:
        # Raised after the UPDATE ran: the caller's transaction (the batch's savepoint)
        # rolls it back with everything else of the batch.
        cancel = first[missing[0]]
        raise ReservationNotRecorded(
            f"reservation {cancel.id} of event {cancel.event_id} was never recorded"
        )
