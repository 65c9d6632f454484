"""The live seat map end to end, as browsers see it.

Buyers and staff change seats over HTTP (django.test.Client → DRF → Lua in Redis → outbox);
the relay publishes the outbox to Kafka; the gateway bridge and the stats projector run in
threads; WebSocket clients (the real ASGI stack and per-process fan-out) apply the protocol of
docs/architecture.md ("Gateway") the way a browser does: start from the snapshot, apply each
frame's items in order, the seat event whose seq is one more than theirs,
drop what they already have, resync on a gap; stats by their own seq. In the end each
client's map must be exactly what GET /api/events/{id}/seats shows an anonymous buyer.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.core.kafka import topics_ensure
from apps.core.tests.pipeline import WAIT_S, Running, relay
from apps.gateway.bridge import GatewayBridge
from apps.gateway.tests.test_consumers import TIMEOUT, communicator, run
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.tests.factories import (
    EventFactory,
    PriceCategoryFactory,
    SectionFactory,
    VenueFactory,
)
from apps.stats.workers import StatsWorker

pytestmark = pytest.mark.django_db(transaction=True)

# The browser's local map: seat event type → state character.
SEAT_EVENT_STATES = {
    "seat.held": "h",
    "seat.reserved": "r",
    "seat.released": "f",
    "seat.blocked": "b",
}
STATS_COUNTS = {"f": "free", "h": "held", "r": "reserved", "b": "blocked"}


# --- the browser ------------------------------------------------------------------------


def seat_map(sections: list[dict]) -> dict[str, str]:
    """Sections as in a snapshot or the seat map API → {"A-1-3": "f", ...}."""
    return {
        f"{section['name']}-{row['row']}-{number}": state
        for section in sections
        for row in section["rows"]
        for number, state in zip(row["numbers"], row["states"], strict=True)
    }


@dataclass
class Segment:
    """One snapshot's seq and the seat seqs applied on top of it, in order."""

    base: int
    applied: list[int] = field(default_factory=list)


@dataclass
class Browser:
    """A WebSocket client keeping its own copy of the seat map by the two-seq rule.

    ``lose``: seqs whose first arrival this client throws away, as if the network had lost
    it (to prove the gap → resync path); an ordinary client loses nothing.
    """

    name: str
    client: WebsocketCommunicator
    lose: set[int] = field(default_factory=set)
    seats: dict[str, str] = field(default_factory=dict)
    seq: int = -1
    stats: dict = field(default_factory=dict)
    stats_seq: int = -1
    segments: list[Segment] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    resyncs: list[tuple[int, int]] = field(default_factory=list)  # (our seq, the seq seen)
    awaiting_snapshot: bool = False  # a resync was asked for, its snapshot not seen yet
    resync_due: bool = False

    async def connect(self) -> "Browser":
        accepted, _ = await self.client.connect(timeout=TIMEOUT)
        assert accepted, self.name
        first = await self.receive()
        assert first["type"] == "snapshot", first
        self.handle(first)
        return self

    async def receive(self) -> dict:
        return json.loads(await self.client.receive_from(timeout=WAIT_S))

    def handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "changes":
            for item in message["items"]:
                self.handle(item)
        elif kind == "snapshot":
            self.seats = seat_map(message["seats"])
            self.seq = message["seq"]
            self.segments.append(Segment(self.seq))
            self.awaiting_snapshot = False
            self.stats_apply(message["stats"])
        elif kind == "stats.updated":
            self.stats_apply(message["data"])
        elif kind in SEAT_EVENT_STATES:
            self.seat_event(message)
        else:
            raise AssertionError(f"{self.name}: unexpected message {message}")

    def stats_apply(self, body: dict) -> None:
        if body["seq"] > self.stats_seq:  # stats seqs skip values: only newer ones count
            self.stats, self.stats_seq = body, body["seq"]

    def seat_event(self, message: dict) -> None:
        seq = message["seq"]
        if seq in self.lose:
            self.lose.discard(seq)
            return
        if self.awaiting_snapshot:
            return  # the snapshot we asked for covers it, or a later event follows
        if seq <= self.seq:
            self.dropped.append(seq)
        elif seq == self.seq + 1:
            for seat in message["data"]["seats"]:
                assert seat in self.seats, (self.name, seat)
                self.seats[seat] = SEAT_EVENT_STATES[message["type"]]
            self.seq = seq
            self.segments[-1].applied.append(seq)
        else:
            self.resyncs.append((self.seq, seq))
            self.awaiting_snapshot = self.resync_due = True

    async def catch_up(self, seq: int) -> None:
        """Read and apply messages until both seqs reach ``seq`` (the write side's last)."""
        while self.seq < seq or self.stats_seq < seq or self.awaiting_snapshot:
            self.handle(await self.receive())
            if self.resync_due:
                self.resync_due = False
                await self.client.send_json_to({"type": "resync"})

    def gap_free(self) -> bool:
        return all(
            s.applied == list(range(s.base + 1, s.base + 1 + len(s.applied))) for s in self.segments
        )


# --- the sale and its buyers ------------------------------------------------------------


@pytest.fixture
def live_sale() -> Event:
    """A (2 rows × 6 seats) and B (1 row × 4 seats), held up to 10 seats at a time."""
    venue = VenueFactory(focal_x=22.0, focal_y=-20.0)
    premium = PriceCategoryFactory(venue=venue, name="Premium", price=Decimal("120.00"))
    standard = PriceCategoryFactory(venue=venue, name="Standard", price=Decimal("40.00"))
    a = SectionFactory(venue=venue, category=premium, name="A")
    b = SectionFactory(venue=venue, category=standard, name="B")
    services.section_seats_generate(section=a, grid=SeatGrid(rows=2, seats_per_row=6))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=1, seats_per_row=4, x=100))
    event = EventFactory(venue=venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=10)
    services.event_open_sale(event=event)
    return event


def buyer() -> Client:
    client = Client()
    client.session  # noqa: B018 - saves a session and sets its cookie: a buyer of its own
    return client


class Commands:
    """The HTTP side of the scenario; every command must succeed and returns its body."""

    def __init__(self, event: Event, staff: Client) -> None:
        self.event = event
        self.staff = staff
        self.seqs: list[int] = []  # every seat seq the commands produced, in order

    def post(self, client: Client, url: str, body: object, status: int) -> dict:
        response = client.post(url, data=json.dumps(body), content_type="application/json")
        assert response.status_code == status, response.content
        reply = response.json()
        self.seqs.append(reply["seq"])
        return reply

    def hold(self, client: Client, seats: list[str]) -> dict:
        return self.post(client, f"/api/events/{self.event.pk}/holds", {"seats": seats}, 201)

    def best(self, client: Client, count: int, **where: int) -> dict:
        body = {"best": {"count": count, **where}}
        return self.post(client, f"/api/events/{self.event.pk}/holds", body, 201)

    def release(self, client: Client, hold: dict, seats: list[str] | None = None) -> dict:
        body = {} if seats is None else {"seats": seats}
        return self.post(client, f"/api/holds/{hold['hold_token']}/release", body, 200)

    def reserve(self, client: Client, hold: dict) -> dict:
        return self.post(client, f"/api/holds/{hold['hold_token']}/reserve", {}, 201)

    def block(self, seats: list[str]) -> dict:
        return self.post(self.staff, f"/api/events/{self.event.pk}/block", {"seats": seats}, 200)

    def unblock(self, seats: list[str]) -> dict:
        url = f"/api/events/{self.event.pk}/unblock"
        return self.post(self.staff, url, {"seats": seats}, 200)


def test_two_browsers_keep_the_same_map_as_the_seat_map_api(live_sale, django_user_model):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])
    event_id = live_sale.pk
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("boxoffice", is_staff=True))
    do = Commands(live_sale, staff)
    alice, bob, carol = buyer(), buyer(), buyer()
    a_section = live_sale.venue.sections.get(name="A").pk
    standard = live_sale.venue.sections.get(name="B").category_id
    holds: dict[str, dict] = {}

    def first_commands() -> None:
        holds["alice"] = do.hold(alice, ["A-1-1", "A-1-2"])
        holds["bob"] = do.best(bob, 3, section=a_section)
        holds["carol"] = do.best(carol, 2, category=standard)
        do.release(alice, holds["alice"], ["A-1-2"])
        do.block(["B-1-4"])

    def commands_before_the_second_browser() -> None:
        do.reserve(bob, holds["bob"])
        do.release(carol, holds["carol"])

    def last_commands() -> None:
        holds["alice2"] = do.best(alice, 2, section=a_section)
        do.reserve(alice, holds["alice"])
        do.block(["A-2-6", "B-1-3"])
        do.unblock(["B-1-4"])
        holds["carol2"] = do.hold(carol, ["B-1-1"])
        do.release(alice, holds["alice2"], [holds["alice2"]["seats"][0]])

    def seat_map_api() -> dict:
        response = Client().get(f"/api/events/{event_id}/seats")  # anonymous
        assert response.status_code == 200
        return response.json()

    def stats_api() -> dict:
        response = Client().get(f"/api/stats/event/{event_id}")
        assert response.status_code == 200
        return response.json()

    async def body() -> None:
        first = await Browser("first", communicator(event_id)).connect()
        assert first.seq == 0
        await sync_to_async(first_commands)()
        published = await sync_to_async(relay)()

        # The second browser opens the page after more changes, before they are published:
        # its snapshot has them already, so it must drop them when they arrive.
        await sync_to_async(commands_before_the_second_browser)()
        second = await Browser("second", communicator(event_id)).connect()
        skipped = list(do.seqs[-2:])
        assert second.seq == skipped[-1]
        # A third one loses a message in transit: it sees the gap and resyncs.
        lossy = await Browser("lossy", communicator(event_id)).connect()
        published += await sync_to_async(relay)()

        await sync_to_async(last_commands)()
        lossy.lose.add(do.seqs[-6])  # one of the last commands' events, not the very last
        published += await sync_to_async(relay)()
        assert published == len(do.seqs)
        assert do.seqs == list(range(1, len(do.seqs) + 1))
        final = do.seqs[-1]

        for browser in (first, second, lossy):
            await browser.catch_up(final)

        api = await sync_to_async(seat_map_api)()
        assert api["seq"] == final
        expected = seat_map(api["sections"])
        assert set(expected.values()) == {"f", "h", "r", "b"}  # never "m": anonymous
        stats = await sync_to_async(stats_api)()
        assert stats["seq"] == final
        for browser in (first, second, lossy):
            assert browser.seq == final, browser.name
            differing = {
                seat: (state, expected[seat])
                for seat, state in browser.seats.items()
                if expected[seat] != state
            }
            assert browser.seats.keys() == expected.keys(), browser.name
            assert not differing, (browser.name, differing)
            assert browser.gap_free(), (browser.name, browser.segments)
            assert browser.stats == stats, browser.name
            counts = Counter(browser.seats.values())
            for code, name in STATS_COUNTS.items():
                assert browser.stats[name] == counts[code], (browser.name, name)

        # The bridge lost and reordered nothing: no gap, so no resync, and every seq applied.
        assert first.resyncs == [] and second.resyncs == []
        assert [s.base for s in first.segments] == [0]
        assert first.segments[0].applied == do.seqs
        # Delivered, but already in its snapshot: at least the two it joined before the relay
        # published them (and the first commands' events if the bridge was still at them).
        assert second.dropped[-2:] == skipped
        assert second.dropped == list(range(second.dropped[0], skipped[-1] + 1))
        assert [s.base for s in second.segments] == [skipped[-1]]
        assert second.segments[0].applied == [seq for seq in do.seqs if seq > skipped[-1]]
        # The lossy one: one gap, right after the lost seq, then a fresh snapshot.
        lost = final - 5
        assert lossy.resyncs == [(lost - 1, lost + 1)]
        assert len(lossy.segments) == 2 and lossy.segments[1].base >= lost + 1

        for browser in (first, second, lossy):
            await browser.client.disconnect()

    with Running(GatewayBridge, StatsWorker):
        run(body)
