from decimal import Decimal

import pytest
from django.db import IntegrityError

from apps.core.envelopes import envelope_parse
from apps.persistence.models import Reservation, ReservedSeat
from apps.persistence.services import (
    EnvelopeDataInvalid,
    ReservationNotRecorded,
    reservation_cancel_record,
    reservation_record,
    reservations_record,
)
from apps.persistence.tests.helpers import (
    cancelled_envelope,
    outbox_envelopes,
    outbox_last,
    reserve,
    reserved_envelope,
)
from apps.reservations import services

pytestmark = pytest.mark.django_db


def test_a_reservation_is_recorded_as_the_write_side_made_it(sale):
    reservation_id = reserve(sale, ["A-1-2", "V-1-1"], holder="user:5")
    envelope = outbox_last(sale, "seat.reserved")

    reservation = reservation_record(envelope=envelope)

    reservation.refresh_from_db()
    assert str(reservation.id) == reservation_id
    assert reservation.event == sale
    assert reservation.holder == "user:5"
    assert reservation.status == Reservation.Status.RESERVED
    assert reservation.total == Decimal("130.00")
    assert reservation.created_at == envelope.occurred_at
    assert reservation.seq == envelope.seq
    assert reservation.cancelled_at is None
    seats = {s.seat_key: (s.price, s.active) for s in reservation.seats.all()}
    assert seats == {"A-1-2": (Decimal("50.00"), True), "V-1-1": (Decimal("80.00"), True)}


def test_recording_the_same_reservation_twice_writes_it_once(sale):
    reserve(sale, ["A-1-1"])
    envelope = outbox_last(sale, "seat.reserved")

    reservation_record(envelope=envelope)
    reservation_record(envelope=envelope)

    assert Reservation.objects.count() == 1
    assert ReservedSeat.objects.count() == 1


def test_a_double_sale_cannot_be_written(sale):
    first = reservation_record(
        envelope=envelope_parse(
            reserved_envelope(event_id=sale.pk, seq=1, seats=["A-1-1", "A-1-2"], prices=[1, 1])
        )
    )
    second = reserved_envelope(event_id=sale.pk, seq=2, seats=["A-1-3", "A-1-2"], prices=[1, 1])

    with pytest.raises(IntegrityError, match="uniq_active_seat_per_event"):
        reservation_record(envelope=envelope_parse(second))

    assert list(Reservation.objects.values_list("id", flat=True)) == [first.id]
    assert ReservedSeat.objects.filter(seat_key="A-1-3").count() == 0


def test_a_cancellation_frees_the_seats_for_a_new_sale(sale):
    reservation_id = reserve(sale, ["A-1-1", "A-1-2"])
    reservation_record(envelope=outbox_last(sale, "seat.reserved"))
    services.reservation_cancel(event_id=sale.pk, reservation_id=reservation_id)
    cancelled = outbox_last(sale, "seat.released")
    assert cancelled.data["reason"] == "cancelled"

    reservation = reservation_cancel_record(envelope=cancelled)

    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.CANCELLED
    assert reservation.cancelled_at == cancelled.occurred_at
    assert not reservation.seats.filter(active=True).exists()
    # The seats sell again; both sales stay on record.
    again = reserve(sale, ["A-1-2"], holder="user:9")
    reservation_record(envelope=outbox_last(sale, "seat.reserved"))
    assert Reservation.objects.get(pk=again).status == Reservation.Status.RESERVED
    assert ReservedSeat.objects.filter(seat_key="A-1-2").count() == 2
    assert str(ReservedSeat.objects.get(seat_key="A-1-2", active=True).reservation_id) == again


def test_a_cancellation_recorded_twice_keeps_the_first(sale):
    reservation_id = reserve(sale, ["A-1-1"])
    reservation_record(envelope=outbox_last(sale, "seat.reserved"))
    services.reservation_cancel(event_id=sale.pk, reservation_id=reservation_id)
    cancelled = outbox_last(sale, "seat.released")
    reservation_cancel_record(envelope=cancelled)
    later = envelope_parse(
        {
            **{f: getattr(cancelled, f) for f in ("id", "type", "event_id", "seq", "data")},
            "occurred_at": "2030-01-01T00:00:00Z",
        }
    )

    reservation_cancel_record(envelope=later)

    assert Reservation.objects.get(pk=reservation_id).cancelled_at == cancelled.occurred_at


def test_cancelling_a_reservation_never_recorded_is_an_error(sale):
    reservation_id = reserve(sale, ["A-1-1"])
    services.reservation_cancel(event_id=sale.pk, reservation_id=reservation_id)

    with pytest.raises(ReservationNotRecorded):
        reservation_cancel_record(envelope=outbox_last(sale, "seat.released"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"price_cents": [100]}, "one non-negative integer per seat"),
        ({"total_cents": 1}, "sum of price_cents"),
        ({"seats": []}, "non-empty list"),
        ({"seats": ["A-1-1", "A-1-1"], "price_cents": [1, 1]}, "listed twice"),
        ({"reservation_id": "nope"}, "not a UUID"),
        ({"holder": ""}, "holder"),
    ],
)
def test_an_incomplete_reservation_is_refused_and_nothing_written(sale, change, problem):
    raw = reserved_envelope(event_id=sale.pk, seq=1, seats=["A-1-1", "A-1-2"], prices=[100, 200])
    raw["data"].update(change)

    with pytest.raises(EnvelopeDataInvalid, match=problem):
        reservation_record(envelope=envelope_parse(raw))

    assert not Reservation.objects.exists()


# --- a whole batch at once (what the consumer calls) ---------------------------------------


def rows(event) -> dict[str, tuple[str, list[tuple[str, bool]]]]:
    """Every reservation of ``event``: id → (status, [(seat, active)])."""
    return {
        str(r.id): (r.status, sorted(r.seats.values_list("seat_key", "active")))
        for r in Reservation.objects.filter(event=event)
    }


def sale_envelope(event, seq: int, seats: list[str], **data: object):  # type: ignore[no-untyped-def]
    raw = reserved_envelope(event_id=event.pk, seq=seq, seats=seats, prices=[100] * len(seats))
    raw["data"].update(data)
    return envelope_parse(raw)


def cancel_envelope(event, seq: int, reservation, seats: list[str] | None = None):  # type: ignore[no-untyped-def]
    rid = reservation.data["reservation_id"]
    return envelope_parse(
        cancelled_envelope(event_id=event.pk, seq=seq, reservation_id=rid, seats=seats)
    )


def test_a_batch_of_the_write_side_gives_the_rows_of_one_envelope_at_a_time(sale):
    """Reserved, cancelled and the seat sold again, holds and releases between, all in one
    batch: the cancellation meets its reservation and the resale meets the cancellation."""
    first = reserve(sale, ["A-1-1", "A-1-2"], holder="user:1")
    hold = services.hold_create(event_id=sale.pk, holder="user:2", seats=["A-1-3"])
    services.hold_release(token=hold.token, holder="user:2")
    second = reserve(sale, ["V-1-1"], holder="user:2")
    services.reservation_cancel(event_id=sale.pk, reservation_id=first)
    third = reserve(sale, ["A-1-2", "A-1-3"], holder="user:3")
    services.seats_block(event=sale, seats=["A-1-1"])
    batch = outbox_envelopes(sale)

    reservations_record(envelopes=batch)

    assert rows(sale) == {
        first: ("cancelled", [("A-1-1", False), ("A-1-2", False)]),
        second: ("reserved", [("V-1-1", True)]),
        third: ("reserved", [("A-1-2", True), ("A-1-3", True)]),
    }
    cancelled_at = Reservation.objects.get(pk=first).cancelled_at
    assert cancelled_at == next(e for e in batch if e.data.get("reason") == "cancelled").occurred_at
    assert Reservation.objects.get(pk=third).total == Decimal("100.00")
    # The same batch again (a redelivery past the cursors, a replayed dead letter): no change.
    reservations_record(envelopes=batch)
    assert len(rows(sale)) == 3
    assert ReservedSeat.objects.count() == 5


def test_a_duplicate_in_a_batch_is_recorded_once_and_its_cancellation_applies(sale):
    earlier = sale_envelope(sale, 1, ["A-1-1"])
    reservations_record(envelopes=[earlier])
    again = sale_envelope(sale, 2, ["A-1-2"])

    reservations_record(
        envelopes=[earlier, again, again, cancel_envelope(sale, 3, earlier, ["A-1-1"])]
    )

    assert rows(sale) == {
        earlier.data["reservation_id"]: ("cancelled", [("A-1-1", False)]),
        again.data["reservation_id"]: ("reserved", [("A-1-2", True)]),
    }


def test_a_double_sale_within_a_batch_is_refused_and_nothing_written(sale):
    first, double = sale_envelope(sale, 1, ["A-1-1"]), sale_envelope(sale, 2, ["A-1-2", "A-1-1"])

    with pytest.raises(IntegrityError, match="uniq_active_seat_per_event"):
        reservations_record(envelopes=[first, sale_envelope(sale, 3, ["V-1-1"]), double])

    assert not Reservation.objects.exists()


def test_a_seat_sold_again_before_its_cancellation_in_the_same_batch_is_refused(sale):
    """Log order decides: the second sale comes while the first is live."""
    first = sale_envelope(sale, 1, ["A-1-1"])
    reservations_record(envelopes=[first])
    double = sale_envelope(sale, 2, ["A-1-1"])

    with pytest.raises(IntegrityError, match="uniq_active_seat_per_event"):
        reservations_record(envelopes=[double, cancel_envelope(sale, 3, first, ["A-1-1"])])

    assert rows(sale) == {first.data["reservation_id"]: ("reserved", [("A-1-1", True)])}


def test_a_seat_sold_again_after_its_cancellation_in_the_same_batch_is_recorded(sale):
    first = sale_envelope(sale, 1, ["A-1-1", "A-1-2"])
    reservations_record(envelopes=[first])
    resale = sale_envelope(sale, 3, ["A-1-2"])

    reservations_record(envelopes=[cancel_envelope(sale, 2, first, ["A-1-1", "A-1-2"]), resale])

    assert rows(sale) == {
        first.data["reservation_id"]: ("cancelled", [("A-1-1", False), ("A-1-2", False)]),
        resale.data["reservation_id"]: ("reserved", [("A-1-2", True)]),
    }


def test_a_cancellation_before_its_reservation_in_a_batch_is_refused(sale):
    reservation = sale_envelope(sale, 2, ["A-1-1"])

    with pytest.raises(ReservationNotRecorded):
        reservations_record(envelopes=[cancel_envelope(sale, 1, reservation), reservation])

    assert not Reservation.objects.exists()


def test_a_bad_envelope_in_a_batch_refuses_the_whole_batch(sale):
    batch = [
        sale_envelope(sale, 1, ["A-1-1"]),
        sale_envelope(sale, 2, ["A-1-2"], total_cents=1),
        sale_envelope(sale, 3, ["A-1-3"]),
    ]

    with pytest.raises(EnvelopeDataInvalid, match="sum of price_cents"):
        reservations_record(envelopes=batch)

    assert not Reservation.objects.exists()


def test_a_cancellation_never_recorded_refuses_the_whole_batch(sale):
    recorded = sale_envelope(sale, 1, ["A-1-1"])
    reservations_record(envelopes=[recorded])
    unknown = sale_envelope(sale, 2, ["A-1-2"])

    with pytest.raises(ReservationNotRecorded, match=unknown.data["reservation_id"]):
        reservations_record(
            envelopes=[
                cancel_envelope(sale, 3, recorded),
                cancel_envelope(sale, 4, unknown),
                sale_envelope(sale, 5, ["A-1-3"]),
            ]
        )

    assert rows(sale) == {recorded.data["reservation_id"]: ("reserved", [("A-1-1", True)])}
