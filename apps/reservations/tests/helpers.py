"""Helpers of the HTTP command tests (test_holds_api.py, test_command_parsing.py,
test_idempotency.py, test_csrf.py, test_token_auth.py, test_throttling.py; their fixtures:
conftest.py). The venue of ``abc_sale``:

    focal point (22, -20)
    A (Premium 120.00)  rows 1-2 × seats 1-6, x = 0..50,    y = 0 / 12
    B (Standard 40.00)  rows 1-2 × seats 1-6, x = 100..150, y = 0 / 12
    C (Standard 40.00)  row 1    × seats 1-4, x = 0..30,    y = 100
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.test import Client

from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event, PriceCategory, Section
from apps.reservations.redis import inventory
from apps.reservations.tests.factories import (
    PriceCategoryFactory,
    SectionFactory,
    VenueFactory,
)

T0 = 1_900_000_000_000  # "now" in ms when the sale opens; tests move it through `clock`
TTL_MS = 600_000


@dataclass
class ABCSale:
    """An event on sale in the A/B/C venue, with its price categories and sections."""

    event: Event
    premium: PriceCategory
    standard: PriceCategory
    a: Section
    b: Section
    c: Section

    @property
    def holds_url(self) -> str:
        return f"/api/events/{self.event.pk}/holds"


def venue_with_sections() -> tuple[PriceCategory, PriceCategory, Section, Section, Section]:
    venue = VenueFactory(focal_x=22.0, focal_y=-20.0)
    premium = PriceCategoryFactory(venue=venue, name="Premium", price=Decimal("120.00"))
    standard = PriceCategoryFactory(venue=venue, name="Standard", price=Decimal("40.00"))
    a = SectionFactory(venue=venue, category=premium, name="A")
    b = SectionFactory(venue=venue, category=standard, name="B")
    c = SectionFactory(venue=venue, category=standard, name="C")
    services.section_seats_generate(section=a, grid=SeatGrid(rows=2, seats_per_row=6))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=2, seats_per_row=6, x=100))
    services.section_seats_generate(section=c, grid=SeatGrid(rows=1, seats_per_row=4, y=100))
    return premium, standard, a, b, c


def buyer() -> Client:
    """A browser that already has a session (as after loading the seat map page).

    Also keeps its commands in their own throttle bucket: cookie-less first commands all
    share the bucket of the client address, 127.0.0.1 for every test client.
    """
    client = Client()
    client.session  # noqa: B018 - the property saves a session and sets its cookie
    return client


def post(client: Client, url: str, body: object = None, **extra: object):
    """POST a JSON body; a str or bytes body is sent as is (for malformed JSON)."""
    data = body if isinstance(body, str | bytes) else ("" if body is None else json.dumps(body))
    return client.post(url, data=data, content_type="application/json", **extra)


def hold(client: Client, sale: ABCSale, seats: list[str], **extra: object):
    return post(client, sale.holds_url, {"seats": seats}, **extra)


def state(sale: ABCSale) -> tuple[int, dict[str, str], dict[str, dict]]:
    """Everything a command could change: seq, seat states, holds."""
    snap = inventory.inventory_snapshot(event_id=sale.event.pk)
    return snap.seq, snap.state, snap.holds


def iso_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)
