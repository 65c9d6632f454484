"""One script from one address cannot hold the house; fifty buyers from fifty addresses do
not notice (docs/architecture.md, Abuse limits).

Against the real stack (tests/stack.py: nginx in front of granian, 1 trusted proxy): every
request reaches Django through nginx, which appends the real peer to X-Forwarded-For. The
fifty buyers connect from loopback addresses of their own (127.0.0.2 … 127.0.0.51, all
valid sources on Linux); the script from 127.0.0.1, keeping its cookies or dropping them,
with or without an X-Forwarded-For of its own making.

The event allows 2 seats per buyer, so one address's anonymous buyers may hold 4 × 2 = 8
at once (SEATS_ADDRESS_HOLD_FACTOR's default), and one address may start 30 sessions in
10 minutes (SEATS_NEW_BUYERS_PER_ADDRESS).
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.redis import inventory
from apps.reservations.tests.factories import EventFactory, SectionFactory, VenueFactory
from tests.stack import ROOT, Browser, Stack

pytestmark = pytest.mark.django_db(transaction=True)

PER_BUYER = 2
ADDRESS_CAP = 4 * PER_BUYER
NEW_BUYERS = 30
CROWD = [f"127.0.0.{n}" for n in range(2, 52)]  # 50 addresses


def sale_open() -> tuple[Event, int]:
    """Section A: the script's row 1 and the picking buyers' rows 2-4; section B: the
    best-available buyers'."""
    venue = VenueFactory(name="Address Hall")
    a = SectionFactory(venue=venue, name="A", category__price=Decimal("40.00"))
    b = SectionFactory(venue=venue, name="B", category__price=Decimal("30.00"))
    services.section_seats_generate(section=a, grid=SeatGrid(rows=4, seats_per_row=24))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=2, seats_per_row=26, x=300))
    event = EventFactory(
        venue=venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=PER_BUYER
    )
    services.event_open_sale(event=event)
    return event, b.pk


def seats_held_by_address(event: Event) -> dict[str, int]:
    snapshot = inventory.inventory_snapshot(event_id=event.pk)
    held: dict[str, int] = {}
    for hold in snapshot.holds.values():
        address = hold.get("address", "none")
        held[address] = held.get(address, 0) + len(hold["seats"])
    return held


def test_one_address_holds_its_cap_and_the_crowd_its_seats(monkeypatch):
    # The defaults, whatever this shell says (the stack inherits its environment).
    monkeypatch.setenv("SEATS_ADDRESS_HOLD_FACTOR", "4")
    monkeypatch.setenv("SEATS_NEW_BUYERS_PER_ADDRESS", str(NEW_BUYERS))
    monkeypatch.setenv("SEATS_NEW_BUYERS_WINDOW_S", "600")
    monkeypatch.setenv("SEATS_COMMAND_RATE", "120/min")
    event, section_b = sale_open()
    holds = f"/api/events/{event.pk}/holds"
    with Stack(ROOT / "artifacts" / "e2e" / "address-limits-stack.log", ["proxy", "web"]) as stack:
        new_sessions = 0

        # Keeping its cookies, the script is one buyer: its own cap binds.
        script = Browser(stack.url)
        assert script.post(holds, {"seats": ["A-1-1", "A-1-2"]})[0] == 201
        new_sessions += 1
        status, body, _ = script.post(holds, {"seats": ["A-1-3"]}, forwarded_for="203.0.113.1")
        assert (status, body["code"]) == (422, "hold_limit_exceeded")

        # Dropping them, it is a new buyer every time, all at once: the address's cap binds,
        # atomically.
        def drop_cookies(n: int) -> tuple[int, dict, object]:
            return Browser(stack.url, cookies=False).post(holds, {"seats": [f"A-1-{n}"]})

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(drop_cookies, range(3, 15)))
        new_sessions += len(answers)
        granted = [a for a in answers if a[0] == 201]
        assert len(granted) == ADDRESS_CAP - PER_BUYER, answers
        refused = {(s, b["code"]) for s, b, _ in answers if s != 201}
        assert refused == {(422, "address_limit_exceeded")}

        # A forged X-Forwarded-For sits left of what nginx appends: the same address.
        for n in range(15, 20):
            anonymous = Browser(stack.url, cookies=False)
            status, body, _ = anonymous.post(holds, {"seats": [f"A-1-{n}"]}, f"198.51.100.{n}")
            assert (status, body["code"]) == (422, "address_limit_exceeded")
            new_sessions += 1

        assert seats_held_by_address(event) == {"addr:127.0.0.1": ADDRESS_CAP}

        # And it cannot start sessions without end: past 30 in the window, 429.
        while new_sessions < NEW_BUYERS:
            status, *_ = Browser(stack.url, cookies=False).post(holds, {"seats": ["A-1-20"]})
            assert status == 422
            new_sessions += 1
        status, body, _ = Browser(stack.url, cookies=False).post(
            holds, {"seats": ["A-1-20"]}, forwarded_for="198.51.100.99"
        )
        assert (status, body["code"]) == (429, "too_many_new_buyers")

        # Meanwhile fifty buyers, one per address, each get their seats: 25 pick theirs,
        # 25 ask for the best pair in section B.
        def buy(n: int) -> tuple[int, dict, object]:
            buyer = Browser(stack.url, source=CROWD[n])
            if n < 25:
                row, first = 2 + n // 12, 2 * (n % 12) + 1
                body = {"seats": [f"A-{row}-{first}", f"A-{row}-{first + 1}"]}
            else:
                body = {"best": {"count": PER_BUYER, "section": section_b}}
            return buyer.post(holds, body)

        with ThreadPoolExecutor(10) as pool:
            bought = list(pool.map(buy, range(len(CROWD))))

        assert [status for status, *_ in bought] == [201] * len(CROWD), bought
        held = seats_held_by_address(event)
        assert held == {"addr:127.0.0.1": ADDRESS_CAP} | {
            f"addr:{address}": PER_BUYER for address in CROWD
        }
        seats = [seat for _, body, _ in bought for seat in body["seats"]]
        assert len(seats) == len(set(seats)) == len(CROWD) * PER_BUYER
