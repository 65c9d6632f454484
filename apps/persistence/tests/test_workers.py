"""End to end: the write side's events, published by the relay → the persistence worker →
rows. Real Redis, broker and Postgres."""

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from kafka.consumer.fetcher import ConsumerRecord

from apps.core.kafka import envelope_encode, kafka_producer_create, topics_ensure
from apps.core.models import ProjectionCursor
from apps.core.projections import dead_letter_topic
from apps.core.tests.pipeline import Running, relay, topic_records, wait_until
from apps.core.workers import BatchResult
from apps.persistence.models import Reservation, ReservedSeat
from apps.persistence.tests.helpers import (
    cancelled_envelope,
    outbox_envelopes,
    reserve,
    reserved_envelope,
)
from apps.persistence.workers import PersistenceWorker
from apps.reservations import services

# The worker thread has its own connection: it must see and commit real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _topic(settings):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS])


def test_the_write_side_events_become_reservation_rows(sale):
    first = reserve(sale, ["A-1-1", "A-1-2"], holder="user:1")
    hold = services.hold_create(event_id=sale.pk, holder="user:2", seats=["A-1-3"])
    services.hold_release(token=hold.token, holder="user:2")
    second = reserve(sale, ["A-1-3", "V-1-1"], holder="user:2")
    services.reservation_cancel(event_id=sale.pk, reservation_id=first)
    last_seq = outbox_envelopes(sale)[-1].seq
    assert relay() == last_seq  # every change of the event is on the topic

    with Running(PersistenceWorker):
        wait_until(
            lambda: ProjectionCursor.objects.filter(
                consumer="persistence", event_id=sale.pk, last_seq=last_seq
            ).exists(),
            "the whole event",
        )

    cancelled, live = Reservation.objects.get(pk=first), Reservation.objects.get(pk=second)
    assert (cancelled.status, cancelled.total) == ("cancelled", Decimal("100.00"))
    assert cancelled.cancelled_at is not None
    assert (live.status, live.total, live.holder) == ("reserved", Decimal("130.00"), "user:2")
    assert sorted(ReservedSeat.objects.filter(active=True).values_list("seat_key", flat=True)) == [
        "A-1-3",
        "V-1-1",
    ]
    assert Reservation.objects.count() == 2  # held and released seats are not reservations


def test_a_double_sale_on_the_topic_is_dead_lettered_and_the_rest_recorded(sale):
    reserve(sale, ["A-1-1"])
    seq = outbox_envelopes(sale)[-1].seq
    relay()
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    # What a broken write side would send: A-1-1 sold again, then a legitimate sale.
    double = envelope_encode(
        reserved_envelope(event_id=sale.pk, seq=seq + 1, seats=["A-1-1"], prices=[5000])
    )
    fine = reserved_envelope(event_id=sale.pk, seq=seq + 2, seats=["A-1-2"], prices=[5000])
    producer = kafka_producer_create()
    for value in (double, envelope_encode(fine)):
        producer.send(topic, key=sale.pk, value=value)
    producer.flush(timeout=30)
    producer.close(timeout=5)

    with Running(PersistenceWorker):
        # Same partition, so the double sale was handled (and dead-lettered, before its
        # batch committed) by the time the next sale is recorded.
        wait_until(
            lambda: Reservation.objects.filter(pk=fine["data"]["reservation_id"]).exists(),
            "the sale after the double one",
        )

    assert Reservation.objects.count() == 2
    assert ReservedSeat.objects.filter(seat_key="A-1-1").count() == 1
    letters = _dead_letters(topic)
    assert [r.value for r in letters] == [double]
    assert b"uniq_active_seat_per_event" in dict(letters[0].headers)["error"]


def test_one_batch_with_a_duplicate_a_bad_envelope_a_double_sale_and_a_cancellation(sale):
    """All on the topic before the worker starts, so they arrive in one batch (or a few):
    the set-based batch fails, the message-by-message retry dead-letters exactly the bad
    envelope and the double sale, and everything else is recorded once."""
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS

    def sale_of(seq: int, seats: list[str], **data: object) -> dict:
        raw = reserved_envelope(event_id=sale.pk, seq=seq, seats=seats, prices=[5000] * len(seats))
        raw["data"].update(data)
        return raw

    first = sale_of(1, ["A-1-1", "A-1-2"])
    bad = sale_of(2, ["A-1-3"], price_cents=[-1])
    double = sale_of(3, ["V-1-1", "A-1-2"])
    cancel = cancelled_envelope(
        event_id=sale.pk,
        seq=4,
        reservation_id=first["data"]["reservation_id"],
        seats=["A-1-1", "A-1-2"],
    )
    resale = sale_of(5, ["A-1-2"])
    values = [envelope_encode(e) for e in (first, first, bad, double, cancel, resale)]
    producer = kafka_producer_create()
    for value in values:
        producer.send(topic, key=sale.pk, value=value)
    producer.flush(timeout=30)
    producer.close(timeout=5)

    with Running(CountingPersistenceWorker) as running:
        wait_until(
            lambda: ProjectionCursor.objects.filter(
                consumer="persistence", event_id=sale.pk, last_seq=5
            ).exists(),
            "the whole batch",
        )

    results = running.workers[0].results
    assert (sum(r.applied for r in results), sum(r.duplicates for r in results)) == (3, 1)
    assert sum(r.dead_letters for r in results) == 2
    assert {
        str(r.id): (r.status, sorted(r.seats.values_list("seat_key", "active")))
        for r in Reservation.objects.all()
    } == {
        first["data"]["reservation_id"]: ("cancelled", [("A-1-1", False), ("A-1-2", False)]),
        resale["data"]["reservation_id"]: ("reserved", [("A-1-2", True)]),
    }
    letters = _dead_letters(topic)
    assert [r.value for r in letters] == [values[2], values[3]]
    assert b"EnvelopeDataInvalid" in dict(letters[0].headers)["error"]
    assert b"uniq_active_seat_per_event" in dict(letters[1].headers)["error"]


class CountingPersistenceWorker(PersistenceWorker):
    """The persistence worker, keeping what each batch did."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[BatchResult] = []

    def batch_process(self, records: list[ConsumerRecord]) -> BatchResult:
        result = super().batch_process(records)
        self.results.append(result)
        return result


def _dead_letters(topic: str) -> list[ConsumerRecord]:
    return topic_records(dead_letter_topic(topic))
