"""stats_apply against the write side's real events (read from its outbox), real Postgres
and Redis."""

from decimal import Decimal

import pytest

from apps.persistence.tests.helpers import outbox_envelopes, reserve
from apps.reservations import services
from apps.stats.cache import stats_cache_get
from apps.stats.models import EventStats, SectionStats
from apps.stats.selectors import stats_body_from_db
from apps.stats.services import stats_apply


def counts(row) -> tuple:
    return (row.total, row.free, row.held, row.reserved, row.blocked, row.revenue)


def section(event, name: str) -> SectionStats:
    return SectionStats.objects.get(event=event, section__name=name)


def apply_outbox(event, since: int = 0) -> set[int]:
    return stats_apply(envelopes=[e for e in outbox_envelopes(event) if e.seq > since])


def test_each_transition_moves_the_counts_and_the_revenue(sale, django_capture_on_commit_callbacks):
    hold = services.hold_create(event_id=sale.pk, holder="user:1", seats=["A-1-1", "A-1-2"])
    assert apply_outbox(sale) == {sale.pk}
    stats = EventStats.objects.get(event=sale)
    assert counts(stats) == (4, 2, 2, 0, 0, Decimal("0"))
    assert counts(section(sale, "A")) == (3, 1, 2, 0, 0, Decimal("0"))
    assert counts(section(sale, "V")) == (1, 1, 0, 0, 0, Decimal("0"))

    seq = stats.last_seq
    reservation_id = services.hold_reserve(token=hold.token, holder="user:1").reservation_id
    vip = services.hold_create(event_id=sale.pk, holder="user:2", seats=["V-1-1"])
    services.hold_release(token=vip.token, holder="user:2")
    services.seats_block(event=sale, seats=["A-1-3"])
    apply_outbox(sale, since=seq)
    stats = EventStats.objects.get(event=sale)
    assert counts(stats) == (4, 1, 0, 2, 1, Decimal("100.00"))
    assert counts(section(sale, "A")) == (3, 0, 0, 2, 1, Decimal("100.00"))
    assert counts(section(sale, "V")) == (1, 1, 0, 0, 0, Decimal("0"))

    seq = stats.last_seq
    services.seats_unblock(event=sale, seats=["A-1-3"])
    services.reservation_cancel(event_id=sale.pk, reservation_id=reservation_id)
    reserve(sale, ["V-1-1"])
    with django_capture_on_commit_callbacks(execute=True):
        apply_outbox(sale, since=seq)
    stats = EventStats.objects.get(event=sale)
    assert stats.last_seq == outbox_envelopes(sale)[-1].seq
    assert counts(stats) == (4, 3, 0, 1, 0, Decimal("80.00"))
    assert counts(section(sale, "A")) == (3, 3, 0, 0, 0, Decimal("0"))
    assert counts(section(sale, "V")) == (1, 0, 0, 1, 0, Decimal("80.00"))
    # The hot copy follows the commit and says the same as the rows.
    assert stats_cache_get(event_id=sale.pk) == stats_body_from_db(event_id=sale.pk)
    assert stats_cache_get(event_id=sale.pk)["revenue"] == "80.00"


def test_an_expired_hold_frees_its_seats(sale, clock):
    services.hold_create(event_id=sale.pk, holder="user:1", seats=["A-1-1"])
    clock.advance(sale.hold_ttl_seconds * 1000 + 1)
    assert services.holds_expire() == 1
    apply_outbox(sale)
    assert [e.data.get("reason") for e in outbox_envelopes(sale)] == [None, "expired"]
    assert counts(EventStats.objects.get(event=sale)) == (4, 4, 0, 0, 0, Decimal("0"))


def test_the_same_batch_twice_changes_nothing(sale, django_capture_on_commit_callbacks):
    reserve(sale, ["A-1-1", "V-1-1"])
    envelopes = outbox_envelopes(sale)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert stats_apply(envelopes=envelopes) == {sale.pk}
    assert len(callbacks) == 1
    before = stats_body_from_db(event_id=sale.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert stats_apply(envelopes=envelopes) == set()
        assert stats_apply(envelopes=envelopes[:1]) == set()
    assert callbacks == []  # nothing changed, nothing to copy or publish
    assert stats_body_from_db(event_id=sale.pk) == before
    assert before["reserved"] == 2
    assert before["revenue"] == "130.00"


def test_a_seat_the_catalog_does_not_know_is_refused(sale):
    from apps.stats.services import StatsError

    envelope = outbox_envelopes(sale) or None
    assert envelope is None  # nothing emitted yet
    reserve(sale, ["A-1-1"])
    held = outbox_envelopes(sale)[0]
    bogus = type(held)(**{**held.__dict__, "data": {**held.data, "seats": ["Z-9-9"]}})
    with pytest.raises(StatsError):
        stats_apply(envelopes=[bogus])
    assert not EventStats.objects.filter(event=sale).exists()  # rolled back as a whole


def test_a_duplicate_in_a_batch_counts_once_and_a_stateless_type_moves_only_the_seq(sale):
    reserve(sale, ["A-1-1", "V-1-1"])
    held, reserved = outbox_envelopes(sale)
    # A type no seat state follows from (none today): the seq moves, the counts do not.
    later = type(held)(**{**held.__dict__, "type": "seat.noted", "seq": reserved.seq + 1})

    assert stats_apply(envelopes=[held, held, reserved, held, later]) == {sale.pk}

    stats = EventStats.objects.get(event=sale)
    assert stats.last_seq == later.seq
    assert counts(stats) == (4, 2, 0, 2, 0, Decimal("130.00"))
    assert counts(section(sale, "A")) == (3, 2, 0, 1, 0, Decimal("50.00"))
    assert counts(section(sale, "V")) == (1, 0, 0, 1, 0, Decimal("80.00"))
    assert stats_apply(envelopes=[later]) == set()
