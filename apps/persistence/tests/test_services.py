from decimal import Decimal

import pytest
from django.db import IntegrityError

from apps.core.consumers import envelope_parse
from apps.persistence.models import Reservation, ReservedSeat
from apps.persistence.services import (
    EnvelopeDataInvalid,
    ReservationNotRecorded,
    reservation_cancel_record,
    reservation_record,
)
from apps.persistence.tests.helpers import outbox_last, reserve, reserved_envelope
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
