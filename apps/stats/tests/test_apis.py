"""The stats read API: shape, the Redis copy and its Postgres fallback, 404s."""

import pytest
from rest_framework.test import APIClient

from apps.persistence.tests.helpers import outbox_envelopes, reserve
from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory
from apps.stats.cache import stats_cache_get, stats_cache_key
from apps.stats.services import stats_apply


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def url(event_id: int, section_id: int | None = None) -> str:
    base = f"/api/stats/event/{event_id}"
    return base if section_id is None else f"{base}/section/{section_id}"


def section_ids(event: Event) -> dict[str, int]:
    return dict(event.venue.sections.values_list("name", "id"))


def test_an_event_on_sale_with_nothing_consumed_is_all_free(sale, api):
    response = api.get(url(sale.pk))
    assert response.status_code == 200
    ids = section_ids(sale)
    assert response.json() == {
        "event_id": sale.pk,
        "seq": 0,
        "total": 4,
        "free": 4,
        "held": 0,
        "reserved": 0,
        "blocked": 0,
        "revenue": "0.00",
        "sections": [
            {"section_id": ids["A"], "name": "A", "total": 3, "free": 3, "held": 0,
             "reserved": 0, "blocked": 0, "revenue": "0.00"},
            {"section_id": ids["V"], "name": "V", "total": 1, "free": 1, "held": 0,
             "reserved": 0, "blocked": 0, "revenue": "0.00"},
        ],
    }  # fmt: skip


def test_event_and_section_stats_from_redis_then_postgres(
    sale, api, django_capture_on_commit_callbacks
):
    reserve(sale, ["A-1-1", "V-1-1"])
    hold = services.hold_create(event_id=sale.pk, holder="user:2", seats=["A-1-2"])
    with django_capture_on_commit_callbacks(execute=True):
        stats_apply(envelopes=outbox_envelopes(sale))
    seq = outbox_envelopes(sale)[-1].seq
    assert stats_cache_get(event_id=sale.pk)["seq"] == seq

    body = api.get(url(sale.pk)).json()
    assert (body["seq"], body["free"], body["held"], body["reserved"]) == (seq, 1, 1, 2)
    assert body["revenue"] == "130.00"
    assert [s["name"] for s in body["sections"]] == ["A", "V"]

    a = api.get(url(sale.pk, section_ids(sale)["A"]))
    assert a.status_code == 200
    assert a.json() == {
        "event_id": sale.pk,
        "seq": seq,
        "section_id": section_ids(sale)["A"],
        "name": "A",
        "total": 3,
        "free": 1,
        "held": 1,
        "reserved": 1,
        "blocked": 0,
        "revenue": "50.00",
    }

    # Without the hot copy, the same answer from Postgres.
    from apps.core.redis import redis_client_get

    redis_client_get().delete(stats_cache_key(sale.pk))
    assert api.get(url(sale.pk)).json() == body
    services.hold_release(token=hold.token, holder="user:2")


def test_unknown_events_and_sections_are_404(sale, api):
    draft = EventFactory(sale_status=Event.SaleStatus.DRAFT)
    other = EventFactory(sale_status=Event.SaleStatus.ON_SALE)
    foreign_section = other.venue.sections.create(
        name="X", category=other.venue.price_categories.create(name="c", price=1)
    )
    for path in (
        url(999_999_999),
        url(draft.pk),
        url(999_999_999, 1),
        url(sale.pk, 999_999_999),
        url(sale.pk, foreign_section.pk),
    ):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
