"""stats_repair and rebuild_projections over a log that lost envelopes: the stats rebuilt
from the write side's state are the stats the whole log would have given. The write side is
driven through its services; the stats worker never runs (the rebuild runs its own). Real
Postgres, Redis and broker."""

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.core.kafka import kafka_producer_create, topics_ensure
from apps.core.models import ProjectionCursor
from apps.core.redis import redis_client_get
from apps.persistence.services import reservations_repair
from apps.persistence.tests.helpers import outbox_envelopes, reserve
from apps.reservations import services
from apps.reservations.redis.keys import event_keys
from apps.reservations.selectors import inventory_snapshot_full_get
from apps.stats.cache import stats_cache_get
from apps.stats.models import EventStats, SectionStats
from apps.stats.rebuild import stats_rebuild
from apps.stats.reconcile import event_reconcile
from apps.stats.selectors import stats_body_from_db
from apps.stats.services import snapshot_counts, stats_apply, stats_differences, stats_repair


def stats_clear(event) -> None:  # type: ignore[no-untyped-def]
    SectionStats.objects.filter(event=event).delete()
    EventStats.objects.filter(event=event).delete()


def stats_equal_redis(event) -> list[str]:  # type: ignore[no-untyped-def]
    snapshot = inventory_snapshot_full_get(event_id=event.pk)
    expected = snapshot_counts(event_id=event.pk, snapshot=snapshot)
    return stats_differences(event_id=event.pk, seq=snapshot.seq, expected=expected)


def traffic(event, clock) -> None:  # type: ignore[no-untyped-def]
    """Every kind of seat event, and a hold past its expiry that no sweep has ended."""
    cancelled = reserve(event, ["A-1-1", "A-1-2"], holder="user:1")
    services.reservation_cancel(event_id=event.pk, reservation_id=cancelled)
    reserve(event, ["A-1-2", "V-1-1"], holder="user:2")
    released = services.hold_create(event_id=event.pk, holder="user:3", seats=["A-1-1"])
    services.hold_release(token=released.token, holder="user:3")
    services.seats_block(event=event, seats=["A-1-1"])
    services.seats_unblock(event=event, seats=["A-1-1"])
    services.seats_block(event=event, seats=["A-1-3"])
    services.hold_create(event_id=event.pk, holder="user:4", seats=["A-1-1"])
    clock.advance(event.hold_ttl_seconds * 1000 + 1)


@pytest.mark.django_db
def test_stats_repaired_from_part_of_the_log_are_what_the_whole_log_gives(
    sale, clock, django_capture_on_commit_callbacks
):
    traffic(sale, clock)
    envelopes = outbox_envelopes(sale)
    stats_apply(envelopes=envelopes)
    whole_log = stats_body_from_db(event_id=sale.pk)
    assert whole_log["held"] == 1  # expired, not swept: the log says held still
    stats_clear(sale)
    stats_apply(envelopes=envelopes[:3])  # the rest is lost

    with django_capture_on_commit_callbacks(execute=True):
        repair = stats_repair(event_id=sale.pk)

    assert stats_body_from_db(event_id=sale.pk) == whole_log
    assert repair.seq == envelopes[-1].seq == whole_log["seq"]
    assert f"stats at seq 3, inventory at seq {repair.seq}" in repair.changes
    assert "stats: event reserved is 2, Redis says 2" not in repair.changes
    assert "stats: section V revenue is 0.00, Redis says 80.00" in repair.changes
    # The hot copy follows the commit.
    assert stats_cache_get(event_id=sale.pk) == whole_log


@pytest.mark.django_db
def test_stats_repaired_from_nothing_and_a_second_repair_changes_nothing(
    sale, clock, django_capture_on_commit_callbacks
):
    traffic(sale, clock)
    seq = outbox_envelopes(sale)[-1].seq

    first = stats_repair(event_id=sale.pk)
    assert first.changes == [f"stats: none yet, inventory at seq {seq}"]
    body = stats_body_from_db(event_id=sale.pk)
    assert (body["seq"], body["free"], body["held"], body["reserved"], body["blocked"]) == (
        seq,
        0,
        1,
        2,
        1,
    )
    assert body["revenue"] == "130.00"
    assert [(s["name"], s["reserved"], s["revenue"]) for s in body["sections"]] == [
        ("A", 1, "50.00"),
        ("V", 1, "80.00"),
    ]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = stats_repair(event_id=sale.pk)
    assert (second.seq, second.changes) == (seq, [])
    assert callbacks == []  # nothing changed, nothing to copy or publish
    # With the reservation rows repaired too, Redis and every projection agree.
    reservations_repair(event_id=sale.pk)
    assert event_reconcile(event_id=sale.pk) == []


@pytest.mark.django_db
def test_after_a_repair_the_envelopes_up_to_it_are_skipped_and_later_ones_applied(sale):
    reserve(sale, ["A-1-1"])
    repaired = stats_repair(event_id=sale.pk).seq
    services.seats_block(event=sale, seats=["A-1-2"])
    later = reserve(sale, ["V-1-1"], holder="user:2")

    # The whole log arrives after all (a redelivery): only what came after the repair counts.
    assert stats_apply(envelopes=outbox_envelopes(sale)) == {sale.pk}

    assert repaired < outbox_envelopes(sale)[-1].seq
    assert stats_equal_redis(sale) == []
    assert stats_body_from_db(event_id=sale.pk)["revenue"] == "130.00"
    services.reservation_cancel(event_id=sale.pk, reservation_id=later)


@pytest.mark.django_db
def test_a_missing_section_row_is_created(sale):
    reserve(sale, ["V-1-1"])
    stats_apply(envelopes=outbox_envelopes(sale))
    SectionStats.objects.filter(event=sale, section__name="V").delete()

    assert stats_repair(event_id=sale.pk).changes == ["stats: section V has no row"]
    assert stats_equal_redis(sale) == []


# --- rebuild_projections over a log that lost envelopes ------------------------------


def publish(event, keep) -> int:  # type: ignore[no-untyped-def]
    """Put the event's envelopes whose seq ``keep`` accepts on the topic, as the relay
    would have (the raw outbox values), then forget the outbox: what the broker lost is
    nowhere else now. Returns how many were published."""
    client = redis_client_get()
    entries = client.xrange(event_keys(event.pk).outbox)
    producer = kafka_producer_create()
    try:
        kept = [f["envelope"] for _, f in entries if keep(int(f["seq"]))]
        for value in kept:
            producer.send(settings.KAFKA_TOPIC_SEAT_EVENTS, key=event.pk, value=value.encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)
    client.delete(event_keys(event.pk).outbox)
    return len(kept)


@pytest.mark.django_db(transaction=True)
def test_rebuild_from_an_empty_log_repairs_every_event_from_redis(sale, clock, capsys):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS])
    traffic(sale, clock)
    seq = outbox_envelopes(sale)[-1].seq
    publish(sale, keep=lambda s: False)  # a broker restarted empty

    call_command("rebuild_projections")

    assert stats_equal_redis(sale) == []
    assert ProjectionCursor.objects.get(consumer="stats", event_id=sale.pk).last_seq == seq
    assert stats_cache_get(event_id=sale.pk) == stats_body_from_db(event_id=sale.pk)
    out = capsys.readouterr().out
    assert "Replayed 0 seat events; stats of 1 events rebuilt." in out
    assert f"Event {sale.pk}: the topic lacks its envelopes up to seq {seq}" in out
    assert f"  stats: none yet, inventory at seq {seq}" in out


@pytest.mark.parametrize(
    ("lost", "after_the_replay"),
    [
        # A hole the replay meets: the worker repairs the event there, up to Redis' seq.
        ("middle", False),
        # A tail no later envelope reveals: repaired after the replay.
        ("tail", True),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_rebuild_from_a_log_that_lost_envelopes_ends_equal_to_redis(
    sale, clock, lost, after_the_replay
):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS])
    traffic(sale, clock)
    seq = outbox_envelopes(sale)[-1].seq
    keep = {"middle": lambda s: not 3 <= s <= 5, "tail": lambda s: s < seq - 2}[lost]
    published = publish(sale, keep=keep)
    opened_untouched = _another_sale_with_nothing_sold(sale)

    rebuilt = stats_rebuild()

    assert rebuilt.read == published
    assert stats_equal_redis(sale) == []
    assert ProjectionCursor.objects.get(consumer="stats", event_id=sale.pk).last_seq == seq
    assert stats_cache_get(event_id=sale.pk) == stats_body_from_db(event_id=sale.pk)
    assert set(rebuilt.repaired) == ({sale.pk} if after_the_replay else set())
    assert not EventStats.objects.filter(event=opened_untouched).exists()  # all free, seq 0


@pytest.mark.django_db(transaction=True)
def test_rebuild_from_a_whole_log_repairs_nothing(sale, clock):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS])
    traffic(sale, clock)
    published = publish(sale, keep=lambda s: True)

    rebuilt = stats_rebuild()

    assert (rebuilt.read, rebuilt.events, rebuilt.repaired) == (published, 1, {})
    assert stats_equal_redis(sale) == []


def _another_sale_with_nothing_sold(sale):  # type: ignore[no-untyped-def]
    from apps.reservations.models import Event
    from apps.reservations.tests.factories import EventFactory

    other = EventFactory(venue=sale.venue, sale_status=Event.SaleStatus.DRAFT)
    services.event_open_sale(event=other)
    return other
