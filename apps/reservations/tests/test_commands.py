import io

import pytest
from django.core.management import call_command

from apps.reservations.models import Event, PriceCategory, Seat, Section, Venue

pytestmark = pytest.mark.django_db


def _snapshot():
    return {
        "venues": list(Venue.objects.values_list("id", "name")),
        "categories": list(PriceCategory.objects.values_list("id", "name", "price")),
        "sections": list(Section.objects.values_list("id", "name", "category_id")),
        "seats": list(Seat.objects.order_by("id").values_list("id", "key", "x", "y")),
        "events": list(Event.objects.values_list("id", "name", "sale_status")),
    }


def test_seed_demo_twice_gives_the_same_data():
    call_command("seed_demo", stdout=io.StringIO())
    first = _snapshot()
    call_command("seed_demo", stdout=io.StringIO())

    assert _snapshot() == first
    assert len(first["sections"]) >= 5
    assert 2000 <= len(first["seats"]) <= 10000
    assert [e[2] for e in first["events"]] == [Event.SaleStatus.ON_SALE]
