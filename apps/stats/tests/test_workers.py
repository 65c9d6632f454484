"""End to end: the write side's events, published by the relay → the stats worker → rows,
the Redis copy and coalesced stats.updated; then rebuild_projections and reconcile.
Real Redis, broker and Postgres."""

import json
import threading
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.core import metrics
from apps.core.kafka import (
    TOPIC_PARTITIONS,
    envelope_encode,
    kafka_producer_create,
    topics_ensure,
)
from apps.core.models import ProjectionCursor
from apps.core.projections import dead_letter_topic
from apps.core.redis import redis_client_get
from apps.core.tests.pipeline import (
    WAIT_S,
    Running,
    event_partition,
    events_on_every_partition,
    relay,
    topic_records,
    wait_until,
)
from apps.persistence.models import ReservedSeat
from apps.persistence.tests.helpers import outbox_envelopes, reserve
from apps.persistence.workers import PersistenceWorker
from apps.reservations import services
from apps.reservations.redis.keys import event_keys
from apps.reservations.selectors import event_seat_places
from apps.reservations.tests.factories import SeatFactory
from apps.stats.cache import stats_cache_get
from apps.stats.models import EventStats
from apps.stats.selectors import stats_body_from_db
from apps.stats.services import StatsPublisher
from apps.stats.workers import StatsWorker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _topics(settings):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])


def caught_up(worker: str, event_id: int, seq: int) -> Callable[[], bool]:
    return lambda: ProjectionCursor.objects.filter(
        consumer=worker, event_id=event_id, last_seq=seq
    ).exists()


def topic_read(topic: str) -> list[dict]:
    """Every message on ``topic`` so far, in order (one event: one partition)."""
    return [json.loads(record.value) for record in topic_records(topic)]


def test_a_burst_is_coalesced_and_the_last_stats_updated_is_exact(sale):
    for _ in range(25):  # 50 seat events for one event
        hold = services.hold_create(event_id=sale.pk, holder="user:1", seats=["A-1-1"])
        services.hold_release(token=hold.token, holder="user:1")
    reserve(sale, ["A-1-2", "V-1-1"])
    services.seats_block(event=sale, seats=["A-1-3"])
    last_seq = outbox_envelopes(sale)[-1].seq
    assert last_seq == 53  # 50, then held + reserved + blocked
    relay()

    with Running(StatsWorker):
        wait_until(caught_up("stats", sale.pk, last_seq), "the whole event")
        wait_until(
            lambda: any(
                m["seq"] == last_seq for m in topic_read(settings.KAFKA_TOPIC_STATS_EVENTS)
            ),
            "the final stats.updated",
        )

    messages = topic_read(settings.KAFKA_TOPIC_STATS_EVENTS)
    # The relay published the burst before the worker started: it arrives in one or a few
    # polls, each coalesced into at most one message per 250 ms window.
    assert 1 <= len(messages) <= 5
    final = stats_body_from_db(event_id=sale.pk)
    assert (final["free"], final["held"], final["reserved"], final["blocked"]) == (1, 0, 2, 1)
    assert final["revenue"] == "130.00"
    last = messages[-1]
    assert (last["type"], last["event_id"], last["seq"]) == ("stats.updated", sale.pk, last_seq)
    assert last["data"] == final
    assert stats_cache_get(event_id=sale.pk) == final


def test_a_seat_unknown_to_the_catalog_is_dead_lettered_alone(sale):
    reserve(sale, ["A-1-1"])
    services.hold_create(event_id=sale.pk, holder="user:2", seats=["V-1-1"])
    held, reserved, vip = (_raw(e) for e in outbox_envelopes(sale))
    bogus = {**held, "id": str(uuid.uuid4()), "data": {**held["data"], "seats": ["Z-9-9"]}}
    envelopes = [{**e, "seq": seq} for seq, e in enumerate([held, bogus, reserved, vip], 1)]
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    # Published in one go, so they arrive in one batch: the catalog does not know Z-9-9, the
    # batch fails, and the message-by-message retry isolates that one.
    producer = kafka_producer_create()
    for envelope in envelopes:
        producer.send(topic, key=sale.pk, value=envelope_encode(envelope))
    producer.flush(timeout=30)
    producer.close(timeout=5)

    with Running(StatsWorker):
        wait_until(caught_up("stats", sale.pk, 4), "the whole batch")

    final = stats_body_from_db(event_id=sale.pk)
    assert (final["free"], final["held"], final["reserved"], final["seq"]) == (2, 1, 1, 4)
    letters = topic_read(dead_letter_topic(topic))
    assert [(m["seq"], m["data"]["seats"]) for m in letters] == [(2, ["Z-9-9"])]


def _raw(envelope) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": envelope.id,
        "type": envelope.type,
        "event_id": envelope.event_id,
        "seq": envelope.seq,
        "occurred_at": envelope.occurred_at.isoformat(),
        "data": envelope.data,
    }


def test_the_publisher_sends_at_most_one_per_window_and_never_loses_the_last(sale):
    now = [100.0]
    publisher = StatsPublisher(clock=lambda: now[0])
    reserve(sale, ["A-1-1"])
    from apps.stats.services import stats_apply

    stats_apply(envelopes=outbox_envelopes(sale))
    try:
        publisher.mark([sale.pk])
        assert publisher.flush() == 1
        publisher.mark([sale.pk])
        now[0] += 0.1
        assert publisher.flush() == 0  # within the window: held back, still marked
        assert publisher.dirty == {sale.pk}
        now[0] += 0.2
        assert publisher.flush() == 1  # the window has passed (an idle poll does this)
        assert publisher.flush() == 0 and publisher.dirty == set()
    finally:
        publisher.close()
    assert len(topic_read(settings.KAFKA_TOPIC_STATS_EVENTS)) == 2


def test_rebuild_projections_gives_the_same_stats(sale):
    first = reserve(sale, ["A-1-1", "A-1-2"])
    hold = services.hold_create(event_id=sale.pk, holder="user:2", seats=["V-1-1"])
    services.reservation_cancel(event_id=sale.pk, reservation_id=first)
    reserve(sale, ["A-1-3"], holder="user:3")
    last_seq = outbox_envelopes(sale)[-1].seq
    relay()
    with Running(StatsWorker):
        wait_until(caught_up("stats", sale.pk, last_seq), "the whole event")
    built = stats_body_from_db(event_id=sale.pk)
    assert (built["held"], built["reserved"], built["revenue"]) == (1, 1, "50.00")

    # Damage the projection; the rebuild starts from nothing anyway.
    EventStats.objects.filter(event=sale).update(free=99, revenue=0)
    call_command("rebuild_projections")

    assert stats_body_from_db(event_id=sale.pk) == built
    assert stats_cache_get(event_id=sale.pk) == built
    assert ProjectionCursor.objects.get(consumer="stats", event_id=sale.pk).last_seq == last_seq
    services.hold_release(token=hold.token, holder="user:2")


def test_reconcile_passes_when_consistent_and_lists_each_difference(sale, capsys):
    reserve(sale, ["A-1-1", "V-1-1"])
    services.hold_create(event_id=sale.pk, holder="user:2", seats=["A-1-2"])
    services.seats_block(event=sale, seats=["A-1-3"])
    last_seq = outbox_envelopes(sale)[-1].seq
    relay()
    with Running(StatsWorker, PersistenceWorker):
        wait_until(caught_up("stats", sale.pk, last_seq), "the stats")
        wait_until(caught_up("persistence", sale.pk, last_seq), "the reservations")

    call_command("reconcile", str(sale.pk))
    assert "OK" in capsys.readouterr().out

    # A lost reservation row, and a seat Redis has free but the stats have blocked.
    ReservedSeat.objects.filter(event=sale, seat_key="V-1-1").delete()
    redis_client_get().hdel(event_keys(sale.pk).state, "A-1-3")
    with pytest.raises(CommandError, match="differences"):
        call_command("reconcile", str(sale.pk))
    out = capsys.readouterr().out
    assert "OK" not in out
    assert "seat V-1-1: reserved" in out and "no reservation row" in out
    assert "stats: event blocked is 1, Redis says 0" in out
    assert "stats: section A free is 0, Redis says 1" in out
    assert "stats: revenue is 130.00, reservation rows say 50.00" in out
    # The seat freed behind the scripts' back is still taken in best available's index.
    assert "row index: row " in out and "states say" in out


def gauged(events: list) -> set[int]:
    """Which of ``events`` this process's seats_event_seats gauges report."""
    ours = {str(e.pk) for e in events}
    return {
        int(sample.labels["event"])
        for metric in metrics.EVENT_SEATS.collect()
        for sample in metric.samples
        if sample.labels["event"] in ours
    }


def test_a_rebalance_leaves_each_events_figures_with_the_worker_that_owns_it():
    # One seat per event, an event on each partition, a hold on each: worker A alone
    # applies them all and reports every event; B joins the group and takes half the
    # partitions; A stops reporting their events (B reports them at their next change), so
    # a dashboard adding up the two workers' gauges counts every event once.
    seat = SeatFactory(key="A-1-1")
    event_seat_places.cache_clear()
    events = events_on_every_partition(seat.venue)
    for event in events:
        services.hold_create(event_id=event.pk, holder="user:1", seats=["A-1-1"])
    relay()
    group = f"test-{uuid.uuid4().hex[:10]}"
    a, b = StatsWorker(group_id=group), StatsWorker(group_id=group)
    consumers = {}
    create = a._kafka_consumer_create
    a._kafka_consumer_create = lambda: consumers.setdefault("a", create())  # type: ignore[method-assign]
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=w.run, args=(stop,), daemon=True)
        for w, stop in zip((a, b), stops, strict=True)
    ]
    try:
        threads[0].start()
        for event in events:
            wait_until(caught_up("stats", event.pk, 1), f"event {event.pk} applied")
        wait_until(lambda: gauged(events) == {e.pk for e in events}, "every event reported")

        threads[1].start()
        wait_until(
            lambda: 0 < len(consumers["a"].assignment()) < TOPIC_PARTITIONS,
            "B to take partitions from A",
        )
        kept = {tp.partition for tp in consumers["a"].assignment()}
        wait_until(
            lambda: (
                gauged(events)
                == {e.pk for e in events if event_partition(e.pk, TOPIC_PARTITIONS) in kept}
            ),
            "A to report only its own events",
        )
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(WAIT_S)
    assert len(kept) == TOPIC_PARTITIONS // 2
