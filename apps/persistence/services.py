"""Write services of the persistence projection: ``seat.reserved`` and ``seat.released``
(reason ``cancelled``) → Reservation and ReservedSeat rows.

``reservations_record`` takes a consumer's whole batch and writes it set-based, in a few
statements whatever its size; the single-envelope services are the same code on a batch of
one. They run inside the consumer's batch transaction (apps/core/projections.py), which already
skips envelopes applied before; they are idempotent on their own as well, so replaying a
dead letter by hand is safe.

``reservations_repair`` writes the rows from the write side's state instead, when the
envelopes that carried it are lost for good (docs/architecture.md, Repair).
"""

import itertools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.envelopes import Envelope
from apps.core.projections import Repair
from apps.persistence.models import Reservation, ReservedSeat
from apps.reservations.redis.inventory import FullSnapshot, ReservationRecord
from apps.reservations.selectors import event_seat_prices, inventory_snapshot_full_get


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


# --- repair from the write side's state (docs/architecture.md, Repair) ------------------


@dataclass
class _Plan:
    """What bringing an event's rows in line with a snapshot takes. Each line is a
    difference; ``records`` and ``cancels`` are the ones the repair fixes, the others are
    only reported."""

    records: list[tuple[uuid.UUID, ReservationRecord]]
    cancels: list[uuid.UUID]
    lines: list[tuple[str, str]]  # (difference, what the repair does about it)


def reservations_differences(*, event_id: int, snapshot: FullSnapshot) -> list[str]:
    """Where the event's reservation rows differ from the write side's reservations at
    ``snapshot``; [] when they agree (read only: what reservations_repair would act on)."""
    return [difference for difference, _ in _repair_plan(event_id, snapshot).lines]


@transaction.atomic
def reservations_repair(*, event_id: int) -> Repair:
    """Bring the event's Reservation and ReservedSeat rows in line with the write side's
    reservations, read once (one atomic snapshot); returns its seq and one line per
    difference found, with what was done about it.

    For when the envelopes that carried them are lost for good (docs/architecture.md,
    Repair). A reservation Redis has and the rows do not is recorded: its holder, its seats
    at the price Redis holds for them, cancelled if Redis says so; what is not known any
    more is made up: its created_at (and cancelled_at) is now and its seq the snapshot's. A
    reservation Redis cancelled is cancelled (cancelled_at: now). Anything else is reported
    and left as it is: Redis never forgets a reservation, so a row it does not know means
    Redis lost data, and a buyer's record is not destroyed on that account.

    Idempotent. Runs under the caller's lock of the persistence cursor of the event
    (ProjectionWorker.projection_repair, or a worker's batch), which it does not touch.
    """
    snapshot = inventory_snapshot_full_get(event_id=event_id)
    plan = _repair_plan(event_id, snapshot)
    # Cancellations first: they free the seats that reservations recorded now may hold.
    now = timezone.now()
    _cancellations_update(
        [_Cancel(id=i, event_id=event_id, at=now, seats=[]) for i in plan.cancels]
    )
    _reservations_create(event_id, plan.records, snapshot, now)
    return Repair(
        seq=snapshot.seq, changes=[f"{difference}: {action}" for difference, action in plan.lines]
    )


def _repair_plan(event_id: int, snapshot: FullSnapshot) -> _Plan:
    plan = _Plan(records=[], cancels=[], lines=[])
    in_redis: dict[uuid.UUID, ReservationRecord] = {}
    for raw_id, record in snapshot.reservations.items():
        try:
            in_redis[uuid.UUID(raw_id)] = record
        except ValueError:
            plan.lines.append((f"reservation {raw_id!r} in Redis: not a UUID", "left as is"))
    rows = dict(Reservation.objects.filter(event_id=event_id).values_list("id", "status"))
    active: dict[uuid.UUID, set[str]] = {}
    for reservation_id, seat in ReservedSeat.objects.filter(
        event_id=event_id, active=True
    ).values_list("reservation_id", "seat_key"):
        active.setdefault(reservation_id, set()).add(seat)
    # Seat → the row that still sells it once the plan's cancellations are made.
    sold = {
        seat: reservation_id
        for reservation_id, seats in active.items()
        if not _cancelled(in_redis.get(reservation_id))
        for seat in seats
    }
    for reservation_id, record in sorted(in_redis.items()):
        row_status = rows.get(reservation_id)
        if row_status is None:
            _plan_record(plan, reservation_id, record, sold)
        else:
            _plan_compare(plan, reservation_id, record, row_status, active)
    for reservation_id in sorted(rows.keys() - in_redis.keys()):
        plan.lines.append(
            (
                f"reservation {reservation_id}: {rows[reservation_id]} in rows, unknown to Redis",
                "kept (Redis lost it, or the row came from elsewhere: check by hand)",
            )
        )
    return plan


def _cancelled(record: ReservationRecord | None) -> bool:
    return record is not None and record.status == Reservation.Status.CANCELLED


def _plan_record(
    plan: _Plan, reservation_id: uuid.UUID, record: ReservationRecord, sold: dict[str, uuid.UUID]
) -> None:
    """A reservation Redis has and the rows do not: recorded, unless another row still
    sells one of its seats. That row is one Redis does not know (or whose seats it
    disagrees with): a double sale, which stays for people to sort out."""
    difference = (
        f"reservation {reservation_id}: {record.status} in Redis ({record.holder}: "
        f"{', '.join(record.seats)}), no row"
    )
    taken = [] if _cancelled(record) else [s for s in record.seats if s in sold]
    if taken:
        rows_selling = ", ".join(f"{seat} by {sold[seat]}" for seat in taken)
        plan.lines.append((difference, f"not recorded: rows sell {rows_selling} (check by hand)"))
        return
    plan.records.append((reservation_id, record))
    plan.lines.append((difference, "recorded as cancelled" if _cancelled(record) else "recorded"))
    if not _cancelled(record):
        sold.update(dict.fromkeys(record.seats, reservation_id))


def _plan_compare(
    plan: _Plan,
    reservation_id: uuid.UUID,
    record: ReservationRecord,
    row_status: str,
    active: dict[uuid.UUID, set[str]],
) -> None:
    """A reservation both have: a cancellation the rows missed is made; anything else is
    reported."""
    row_cancelled = row_status == Reservation.Status.CANCELLED
    if _cancelled(record) and not row_cancelled:
        plan.cancels.append(reservation_id)
        plan.lines.append(
            (f"reservation {reservation_id}: cancelled in Redis, {row_status} in rows", "cancelled")
        )
    elif row_cancelled and not _cancelled(record):
        # Only Redis losing a cancellation it made leads here: which one is right is for
        # people to say (the buyer may have been refunded).
        plan.lines.append(
            (f"reservation {reservation_id}: {record.status} in Redis, cancelled in rows", "kept")
        )
    elif not row_cancelled and active.get(reservation_id, set()) != set(record.seats):
        in_rows = ", ".join(sorted(active.get(reservation_id, set()))) or "none"
        plan.lines.append(
            (
                f"reservation {reservation_id}: seats {in_rows} in rows, Redis says "
                f"{', '.join(record.seats)}",
                "left as is",
            )
        )


def _reservations_create(
    event_id: int,
    records: list[tuple[uuid.UUID, ReservationRecord]],
    snapshot: FullSnapshot,
    now: datetime,
) -> None:
    if not records:
        return
    catalog = event_seat_prices(event_id=event_id)

    def price(seat: str) -> Decimal:
        # The price Redis charged from (reserve.lua); the catalog's is the same unless it
        # was changed behind the platform's back.
        cents = snapshot.prices_cents.get(seat)
        return Decimal(cents).scaleb(-2) if cents is not None else catalog[seat]

    reservations, seats = [], []
    for reservation_id, record in records:
        cancelled = record.status == Reservation.Status.CANCELLED
        reservations.append(
            Reservation(
                id=reservation_id,
                event_id=event_id,
                holder=record.holder,
                total=sum((price(seat) for seat in record.seats), Decimal("0.00")),
                status=Reservation.Status.CANCELLED if cancelled else Reservation.Status.RESERVED,
                created_at=now,  # the real time went with the lost envelope
                cancelled_at=now if cancelled else None,
                seq=snapshot.seq,  # at most this: the seq of its seat.reserved is lost too
            )
        )
        seats += [
            ReservedSeat(
                reservation_id=reservation_id,
                event_id=event_id,
                seat_key=seat,
                price=price(seat),
                active=not cancelled,
            )
            for seat in record.seats
        ]
    Reservation.objects.bulk_create(reservations, batch_size=1000)
    ReservedSeat.objects.bulk_create(seats, batch_size=2000)
