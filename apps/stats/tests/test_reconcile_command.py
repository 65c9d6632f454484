"""``manage.py reconcile <event> --repair``: the projections brought back in line with Redis
when the workers never applied what the write side did (the log lost it). The write side is
driven through its services; no worker runs. Real Postgres, Redis and broker."""

import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from apps.core.kafka import topics_ensure
from apps.core.models import ProjectionCursor
from apps.core.redis import redis_client_get
from apps.core.tests.pipeline import topic_records
from apps.persistence.models import Reservation
from apps.persistence.services import reservations_record
from apps.persistence.tests.helpers import outbox_envelopes, outbox_last, reserve
from apps.reservations import services
from apps.reservations.redis.keys import event_keys
from apps.stats.cache import stats_cache_get
from apps.stats.reconcile import event_reconcile
from apps.stats.selectors import stats_body_from_db

# Real commits: the repaired stats reach the hot copy and stats.updated after them.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _topics(settings):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])


def reconcile(capsys, *args: str) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """(exit status 0, output) of ``manage.py reconcile``."""
    try:
        call_command("reconcile", *args)
        ok = True
    except CommandError:
        ok = False
    return ok, capsys.readouterr().out


def test_repair_brings_both_projections_in_line_and_exits_0(sale, capsys):
    first = reserve(sale, ["A-1-1"], holder="user:1")
    reservations_record(envelopes=[outbox_last(sale, "seat.reserved")])  # the rest is lost
    services.reservation_cancel(event_id=sale.pk, reservation_id=first)
    second = reserve(sale, ["A-1-1", "V-1-1"], holder="user:2")
    services.hold_create(event_id=sale.pk, holder="user:3", seats=["A-1-2"])
    services.seats_block(event=sale, seats=["A-1-3"])
    seq = outbox_envelopes(sale)[-1].seq

    ok, out = reconcile(capsys, str(sale.pk))
    assert not ok
    assert f"seat A-1-1: reservation {second} in Redis, {first} in rows" in out

    ok, out = reconcile(capsys, str(sale.pk), "--repair")

    assert ok, out
    assert f"repaired persistence at seq {seq}:" in out
    assert f"  reservation {first}: cancelled in Redis, reserved in rows: cancelled" in out
    assert (
        f"  reservation {second}: reserved in Redis (user:2: A-1-1, V-1-1), no row: recorded" in out
    )
    assert f"repaired stats at seq {seq}:" in out
    assert f"  stats: none yet, inventory at seq {seq}" in out
    assert out.endswith(f"OK: event {sale.pk} is consistent after the repair\n")
    assert event_reconcile(event_id=sale.pk) == []
    assert Reservation.objects.get(pk=first).status == "cancelled"
    for worker in ("persistence", "stats"):
        assert ProjectionCursor.objects.get(consumer=worker, event_id=sale.pk).last_seq == seq
    # Visible as the worker makes its changes visible: the hot copy and a stats.updated.
    body = stats_body_from_db(event_id=sale.pk)
    assert (body["held"], body["reserved"], body["blocked"], body["revenue"]) == (1, 2, 1, "130.00")
    assert stats_cache_get(event_id=sale.pk) == body
    published = [json.loads(r.value) for r in topic_records(settings.KAFKA_TOPIC_STATS_EVENTS)]
    assert [(m["type"], m["seq"], m["data"]) for m in published] == [("stats.updated", seq, body)]

    # Consistent now: nothing to repair, nothing repaired.
    ok, out = reconcile(capsys, str(sale.pk), "--repair")
    assert ok
    assert out == f"OK: event {sale.pk} is consistent\n"


def test_what_the_repair_must_not_decide_is_reported_and_exits_non_zero(sale, capsys):
    reserve(sale, ["V-1-1"])
    reservations_record(envelopes=[outbox_last(sale, "seat.reserved")])
    # Redis forgets the sale (lost data): the buyer's row stays, and the command says so.
    sold = str(Reservation.objects.get().pk)
    client = redis_client_get()
    client.hdel(event_keys(sale.pk).reservations, sold)
    client.hdel(event_keys(sale.pk).state, "V-1-1")

    ok, out = reconcile(capsys, str(sale.pk), "--repair")

    assert not ok
    assert f"  reservation {sold}: reserved in rows, unknown to Redis: kept" in out
    assert f"left after the repair: seat V-1-1: reservation row {sold}, but free in Redis" in out
    assert Reservation.objects.get(pk=sold).status == "reserved"
    # Best available's index still has the seat taken: not this command's to rebuild.
    assert "left after the repair: row index: " in out
    assert "row index: not repaired by --repair; opening the sale again rebuilds it" in out
