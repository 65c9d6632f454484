"""reservations_repair: the reservation rows rebuilt from the write side's state when the
envelopes that carried it are lost. The write side is driven through its services; the
persistence worker never runs, so the rows are missing or stale. Real Postgres and Redis."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.envelopes import envelope_parse
from apps.core.models import ProjectionCursor
from apps.persistence.models import Reservation, ReservedSeat
from apps.persistence.selectors import event_reserved_seats
from apps.persistence.services import (
    reservations_differences,
    reservations_record,
    reservations_repair,
)
from apps.persistence.tests.helpers import outbox_envelopes, outbox_last, reserve, reserved_envelope
from apps.persistence.workers import PersistenceWorker
from apps.reservations import services
from apps.reservations.selectors import inventory_snapshot_full_get

pytestmark = pytest.mark.django_db


def rows(event) -> dict[str, tuple[str, list[tuple[str, Decimal, bool]]]]:  # type: ignore[no-untyped-def]
    """Every reservation of ``event``: id → (status, [(seat, price, active)])."""
    return {
        str(r.id): (r.status, sorted(r.seats.values_list("seat_key", "price", "active")))
        for r in Reservation.objects.filter(event=event)
    }


def redis_seq(event) -> int:  # type: ignore[no-untyped-def]
    return inventory_snapshot_full_get(event_id=event.pk).seq


def assert_rows_equal_redis(event) -> None:  # type: ignore[no-untyped-def]
    snapshot = inventory_snapshot_full_get(event_id=event.pk)
    reserved = {seat: value[2:] for seat, value in snapshot.state.items() if value[0] == "r"}
    assert event_reserved_seats(event_id=event.pk) == reserved
    assert {rid: status for rid, (status, _) in rows(event).items()} == {
        rid: record.status for rid, record in snapshot.reservations.items()
    }
    assert reservations_differences(event_id=event.pk, snapshot=snapshot) == []


def test_what_redis_sold_and_cancelled_is_recorded_from_nothing(sale):
    sold = reserve(sale, ["A-1-1", "V-1-1"], holder="user:5")
    cancelled = reserve(sale, ["A-1-2"], holder="user:6")
    services.reservation_cancel(event_id=sale.pk, reservation_id=cancelled)
    services.hold_create(event_id=sale.pk, holder="user:7", seats=["A-1-3"])  # not a sale
    before = timezone.now()

    repair = reservations_repair(event_id=sale.pk)

    assert repair.seq == redis_seq(sale) == outbox_envelopes(sale)[-1].seq
    assert rows(sale) == {
        sold: ("reserved", [("A-1-1", Decimal("50.00"), True), ("V-1-1", Decimal("80.00"), True)]),
        cancelled: ("cancelled", [("A-1-2", Decimal("50.00"), False)]),
    }
    live = Reservation.objects.get(pk=sold)
    assert (live.holder, live.total, live.seq, live.cancelled_at) == (
        "user:5",
        Decimal("130.00"),
        repair.seq,
        None,
    )
    # The time of the sale went with its envelope: the repair's own time stands in.
    assert before <= live.created_at <= timezone.now()
    assert Reservation.objects.get(pk=cancelled).cancelled_at is not None
    assert sorted(repair.changes) == sorted(
        [
            f"reservation {sold}: reserved in Redis (user:5: A-1-1, V-1-1), no row: recorded",
            f"reservation {cancelled}: cancelled in Redis (user:6: A-1-2), no row: "
            "recorded as cancelled",
        ]
    )
    assert_rows_equal_redis(sale)


def test_a_second_repair_changes_nothing(sale):
    reserve(sale, ["A-1-1"])
    services.reservation_cancel(event_id=sale.pk, reservation_id=reserve(sale, ["A-1-2"]))
    first = reservations_repair(event_id=sale.pk)
    recorded = rows(sale)
    created = dict(Reservation.objects.values_list("id", "created_at"))

    second = reservations_repair(event_id=sale.pk)

    assert first.changes and second.changes == []
    assert second.seq == first.seq
    assert rows(sale) == recorded
    assert dict(Reservation.objects.values_list("id", "created_at")) == created


def test_a_projection_that_applied_part_of_the_log_is_completed(sale):
    """The rows saw the first sale only; the log lost its cancellation and the resale of
    its seat: the row is cancelled before the resale is recorded."""
    first = reserve(sale, ["A-1-1", "A-1-2"], holder="user:1")
    reservations_record(envelopes=[outbox_last(sale, "seat.reserved")])
    recorded_at = Reservation.objects.get(pk=first).created_at
    services.reservation_cancel(event_id=sale.pk, reservation_id=first)
    resale = reserve(sale, ["A-1-2", "V-1-1"], holder="user:2")
    services.seats_block(event=sale, seats=["A-1-1"])

    repair = reservations_repair(event_id=sale.pk)

    assert rows(sale) == {
        first: (
            "cancelled",
            [("A-1-1", Decimal("50.00"), False), ("A-1-2", Decimal("50.00"), False)],
        ),
        resale: (
            "reserved",
            [("A-1-2", Decimal("50.00"), True), ("V-1-1", Decimal("80.00"), True)],
        ),
    }
    kept = Reservation.objects.get(pk=first)
    assert kept.created_at == recorded_at  # what the rows knew stays
    assert kept.cancelled_at is not None
    assert sorted(repair.changes) == sorted(
        [
            f"reservation {first}: cancelled in Redis, reserved in rows: cancelled",
            f"reservation {resale}: reserved in Redis (user:2: A-1-2, V-1-1), no row: recorded",
        ]
    )
    assert_rows_equal_redis(sale)
    assert reservations_repair(event_id=sale.pk).changes == []


def test_a_row_redis_does_not_know_is_reported_and_kept(sale):
    sold = reserve(sale, ["A-1-1"])
    stranger = envelope_parse(
        reserved_envelope(event_id=sale.pk, seq=1, seats=["A-1-3"], prices=[5000], holder="user:9")
    )
    reservations_record(envelopes=[stranger])
    stranger_id = stranger.data["reservation_id"]

    repair = reservations_repair(event_id=sale.pk)

    assert rows(sale)[stranger_id] == ("reserved", [("A-1-3", Decimal("50.00"), True)])
    assert rows(sale)[sold][0] == "reserved"
    unknown = (
        f"reservation {stranger_id}: reserved in rows, unknown to Redis: kept (Redis lost it, "
        "or the row came from elsewhere: check by hand)"
    )
    assert unknown in repair.changes
    # Still a difference, so still reported; nothing else to do.
    assert reservations_repair(event_id=sale.pk).changes == [unknown]


def test_a_sale_whose_seat_a_row_redis_does_not_know_sells_is_not_recorded(sale):
    """Redis lost the row's sale and sold the seat again: two buyers hold one seat. The
    repair records neither over the other; people decide."""
    stranger = envelope_parse(
        reserved_envelope(event_id=sale.pk, seq=1, seats=["A-1-1"], prices=[5000])
    )
    reservations_record(envelopes=[stranger])
    sold = reserve(sale, ["A-1-1", "A-1-2"], holder="user:2")

    repair = reservations_repair(event_id=sale.pk)

    assert sold not in rows(sale)
    assert (
        f"reservation {sold}: reserved in Redis (user:2: A-1-1, A-1-2), no row: not recorded: "
        f"rows sell A-1-1 by {stranger.data['reservation_id']} (check by hand)"
    ) in repair.changes
    assert len(repair.changes) == 2  # and the row Redis does not know
    assert ReservedSeat.objects.filter(active=True).count() == 1


def test_the_worker_repairs_under_its_cursor_and_moves_it(sale):
    reserve(sale, ["V-1-1"])
    reservations_repair(event_id=sale.pk)
    assert not ProjectionCursor.objects.exists(), "the service leaves the cursor alone"
    Reservation.objects.update(created_at=timezone.now() - timedelta(days=1))
    services.reservation_cancel(event_id=sale.pk, reservation_id=str(Reservation.objects.get().pk))

    worker = PersistenceWorker()
    try:
        repair = worker.projection_repair(sale.pk)
    finally:
        worker.close()

    assert len(repair.changes) == 1 and repair.changes[0].endswith("cancelled")
    cursor = ProjectionCursor.objects.get(consumer="persistence", event_id=sale.pk)
    assert cursor.last_seq == repair.seq == redis_seq(sale)
    assert_rows_equal_redis(sale)
