"""The waiting room in a real headless Chromium, against the real stack.

An event on sale has its waiting room on: 12 admissions a minute (one every 5 s) from a
start a few seconds away. Buyers A and B (two browser contexts: two sessions) open the event
before the start: both see the waiting room say their place is drawn at the start. After the
draw one is 1st and the other 2nd; celery's beat ticks the room every second, so the first is
admitted about 5 s after the start and reaches the seat map by itself, while the other moves
to 1st; the first holds a seat; 5 s later the other is admitted, reaches the map and holds a
seat too, and a reload brings them back to the map and their hold. Screenshots go to
artifacts/e2e/.

Only the processes a buyer's page and the admission tick need run: the proxy, web, ws and
celery (whose beat runs apps.waitingroom.tasks.rooms_advance_task); the Kafka pipeline is
not involved in anything this test looks at.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest

from apps.waitingroom.models import WaitingRoom
from apps.waitingroom.services import room_sync
from tests.stack import ROOT, Stack
from tests.test_seat_map_browser import chromium, desk_and_phone, focus_seat, sale_open, shot

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = ROOT / "artifacts" / "e2e"
PROCESSES = ["proxy", "web", "ws", "celery"]
RATE_PER_MINUTE = 12  # one admission every 5 s
LEAD_S = 6  # the start, from the room's creation: time for both buyers to arrive before it
WAIT_MS = 15_000  # guards against hanging: the slowest step (B's turn) is ~10 s after the start


@pytest.fixture
def stack(settings):
    with Stack(ARTIFACTS / "waiting-room-stack.log", processes=PROCESSES) as running:
        yield running


def test_two_buyers_wait_their_turn_and_reach_the_map_by_themselves(stack):
    event = sale_open()
    room = WaitingRoom.objects.create(
        event=event,
        enabled=True,
        sale_starts_at=datetime.now(UTC) + timedelta(seconds=LEAD_S),
        rate_per_minute=RATE_PER_MINUTE,
        pass_minutes=5,
    )
    room_sync(room)  # no transaction here (transaction=True): into Redis at once
    with chromium() as browser:
        two_buyers_queue(browser, f"{stack.url}/events/{event.pk}/")


def two_buyers_queue(browser, url: str) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    a, b = desk_and_phone(browser)

    # Before the start: the waiting room, no seat map, the place to be drawn at the start.
    for page in (a, b):
        page.goto(url)
        status = page.get_by_test_id("room-status")
        expect(status).to_contain_text("The sale starts at")
        expect(status).to_contain_text("Your place is drawn at the start")
        expect(page.get_by_role("application")).to_have_count(0)
    shot(b, "30-room-before-the-start")

    # After the draw: one buyer is 1st, the other 2nd (the draw is random).
    for page in (a, b):
        expect(page.get_by_test_id("room-position")).to_have_text(re.compile(r"^[12]$"))
    first, second = (a, b) if a.get_by_test_id("room-position").inner_text() == "1" else (b, a)
    expect(first.get_by_test_id("room-ahead")).to_have_text("You are next.")
    expect(second.get_by_test_id("room-position")).to_have_text("2")
    expect(second.get_by_test_id("room-ahead")).to_have_text("1 buyer ahead of you.")
    expect(second.get_by_test_id("room-eta")).to_have_text("Estimated wait: less than a minute.")
    shot(second, "31-room-second-in-line")

    # The first is admitted and reaches the seat map by itself; the other moves up to 1st.
    map_shows(first)
    expect(second.get_by_test_id("room-position")).to_have_text("1")
    expect(second.get_by_test_id("room-ahead")).to_have_text("You are next.")
    expect(second.get_by_role("application")).to_have_count(0)
    shot(second, "32-room-next-in-line")

    # An admitted buyer may hold seats (their commands carry the pass).
    hold_seat(first, [], "A-1-1")
    shot(first, "33-room-first-holds-a-seat")

    # Then it is the other one's turn.
    map_shows(second)
    hold_seat(second, ["ArrowRight"], "A-1-2")
    shot(second, "34-room-second-holds-a-seat")

    # A reload keeps the turn: the pass is still valid, so the map (and the hold) come back.
    second.reload()
    map_shows(second)
    expect(second.get_by_test_id("hold-panel")).to_contain_text("A-1-2")


def map_shows(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("waiting-room")).to_have_count(0)
    expect(page.get_by_role("application")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("Live")


def hold_seat(page, moves: list[str], seat: str) -> None:
    from playwright.sync_api import expect

    focus_seat(page, moves)
    expect(page.get_by_test_id("seat-focus")).to_contain_text("free")
    page.keyboard.press("Space")
    page.get_by_test_id("hold-button").click()
    expect(page.get_by_test_id("hold-panel")).to_contain_text(seat)
