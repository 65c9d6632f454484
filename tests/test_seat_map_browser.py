"""Two buyers on one event, in a real headless Chromium, against the real stack.

The stack is the Procfile's processes (tests/stack.py) on this test's database, Redis prefix
and topics; the browser is Debian's Chromium (SEATS_CHROMIUM, installed by `make browser`)
driven by Playwright. Buyer A (a desktop window) and buyer B (a phone-sized one) open the
same event. B picks A-1-2 and A-1-3; A holds A-1-1 and A-1-2, and B's map shows them held by
others; A confirms; B's hold attempt fails with a conflict naming A-1-2 alone, keeps A-1-3
selected, and B then holds A-1-3. A reload keeps B's hold. Every step's screenshot is saved
under artifacts/e2e/, with the measured hold → other-browser latency.

A third page's socket is cut (through Playwright's WebSocket route) and reconnects refused
for a while: the page says "Reconnecting…" and that its colours may be stale; seats held
meanwhile show once it is live again; then "Find best seats" holds the best pair in B.

The box office's admin page for the event, open in a staff member's browser, shows another
buyer's hold in its figures without a reload.

The venue: section A (50.00) rows 1-2 × seats 1-6, section B (30.00) row 1 × seats 1-6.
"""

import json
import os
import re
import time
import urllib.request
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from websockets.sync.client import connect

from apps.persistence.models import Reservation
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory, SectionFactory, VenueFactory
from tests.stack import ROOT, Stack

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = os.environ.get("SEATS_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 15_000  # guards against hanging, not timings: the latency is measured and saved
PIPELINE_S = 60  # the first consumer-group joins on the broker take seconds
COUNTDOWN = re.compile(r"^\d{1,2}:\d{2}$")


def sale_open() -> Event:
    venue = VenueFactory(name="Browser Hall", focal_x=25.0, focal_y=-20.0)
    a = SectionFactory(venue=venue, name="A", category__price=Decimal("50.00"))
    b = SectionFactory(venue=venue, name="B", category__price=Decimal("30.00"))
    services.section_seats_generate(section=a, grid=SeatGrid(rows=2, seats_per_row=6))
    services.section_seats_generate(section=b, grid=SeatGrid(rows=1, seats_per_row=6, x=100))
    event = EventFactory(venue=venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=6)
    services.event_open_sale(event=event)
    return event


def pipeline_wait(stack: Stack, event: Event) -> None:
    """Hold and release a seat until a WebSocket of the event sees it: relay, broker and the
    gateway's consumer group are then all live, and the browsers' test can start."""
    url = f"ws://127.0.0.1:{stack.port}/ws/events/{event.pk}/"
    with connect(url, origin=stack.url, open_timeout=10) as socket:
        assert '"snapshot"' in socket.recv(timeout=10)
        hold = services.hold_create(event_id=event.pk, holder="session:warm-up", seats=["B-1-6"])
        deadline = time.monotonic() + PIPELINE_S
        while time.monotonic() < deadline:
            message = socket.recv(timeout=PIPELINE_S)
            if '"seat.held"' in message:
                break
        else:
            raise AssertionError(f"no seat.held within {PIPELINE_S} s:\n{stack.log_tail()}")
        services.hold_release(token=hold.token, holder="session:warm-up")


@pytest.fixture
def stack(settings):
    with Stack(ARTIFACTS / "stack.log") as running:
        yield running


@contextmanager
def chromium():
    """Playwright's sync API runs an event loop in this thread, where Django refuses ORM
    calls: the test touches the database only before and after this block."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: run `make browser`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def focus_seat(page, moves: list[str]) -> None:
    """Keyboard only: Home is section A row 1 seat 1; arrows move between seats."""
    page.get_by_role("application").focus()
    page.keyboard.press("Home")
    for key in moves:
        page.keyboard.press(key)


def test_two_buyers_race_for_seats_in_real_browsers(stack):
    event = sale_open()
    pipeline_wait(stack, event)
    with chromium() as browser:
        latency_s = two_buyers(browser, f"{stack.url}/events/{event.pk}/")
    (ARTIFACTS / "latency.txt").write_text(
        f"A's hold shown → B's map shows it held by others: {latency_s * 1000:.0f} ms\n"
    )
    print(f"hold → other browser: {latency_s * 1000:.0f} ms")

    # A's reservation reached Postgres through the persistence worker.
    deadline = time.monotonic() + PIPELINE_S
    while not Reservation.objects.filter(event_id=event.pk).exists():
        assert time.monotonic() < deadline, "the reservation was not persisted"
        time.sleep(0.2)
    reservation = Reservation.objects.get(event_id=event.pk)
    assert sorted(reservation.seats.values_list("seat_key", flat=True)) == ["A-1-1", "A-1-2"]


def test_a_dropped_connection_comes_back_current_and_best_seats_are_found(stack):
    event = sale_open()
    pipeline_wait(stack, event)
    with chromium() as browser:
        dropped_and_back(browser, stack.url, event.pk)


def hold_over_http(base_url: str, event_id: int, seats: list[str]) -> None:
    """Another buyer (no cookies, so no session and no CSRF) holds seats."""
    request = urllib.request.Request(  # noqa: S310 - our own http URL
        f"{base_url}/api/events/{event_id}/holds",
        data=json.dumps({"seats": seats}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201


def dropped_and_back(browser, base_url: str, event_id: int) -> None:
    """The page's socket goes through Playwright's WebSocket route, which forwards it to
    the server until the test cuts it and refuses reconnects for a while."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    routed: list = []
    network = {"up": True}

    def route(ws) -> None:
        if network["up"]:
            ws.connect_to_server()
            routed.append(ws)
        else:
            ws.close(code=4000, reason="network down")

    page.route_web_socket(re.compile(r"/ws/events/"), route)
    page.goto(f"{base_url}/events/{event_id}/")
    connection = page.get_by_test_id("connection")
    expect(connection).to_have_text("Live")
    expect(page.get_by_test_id("section-stats")).to_contain_text("6 left in B")

    network["up"] = False
    routed[-1].close(code=4000, reason="network down")
    expect(connection).to_have_text("Reconnecting…")
    expect(page.get_by_role("status").filter(has_text="Connection lost")).to_be_visible()
    shot(page, "10-reconnecting")
    # While the page is cut off, another buyer holds B-1-1 and B-1-2.
    hold_over_http(base_url, event_id, ["B-1-1", "B-1-2"])

    network["up"] = True
    expect(connection).to_have_text("Live")
    expect(page.get_by_role("status").filter(has_text="Connection lost")).to_have_count(0)
    # The new snapshot has what happened meanwhile (not just what arrives from now on).
    focus_seat(page, ["End", "ArrowLeft", "ArrowLeft", "ArrowLeft", "ArrowLeft", "ArrowLeft"])
    expect(page.get_by_test_id("seat-focus")).to_have_text("B row 1 seat 1, held by others, €30.00")
    expect(page.get_by_test_id("section-stats")).to_contain_text("4 left in B")
    shot(page, "11-back-live")

    # "Find best seats", 2 in B: of the free B-1-3 … B-1-6, the pair nearest the stage
    # that strands nobody is 3-4 (4-5 would leave 3 alone).
    page.get_by_label("Section").select_option(label="B")
    page.get_by_role("button", name="Find best seats").click()
    panel = page.get_by_test_id("hold-panel")
    expect(panel).to_contain_text("B-1-3")
    expect(panel).to_contain_text("B-1-4")
    expect(page.get_by_test_id("section-stats")).to_contain_text("2 left in B")
    shot(page, "12-best-seats-held")
    page.close()


def desk_and_phone(browser):  # type: ignore[no-untyped-def]
    """Two buyers' pages: A on a desktop browser, B on a phone (touch)."""
    desk = browser.new_context(viewport={"width": 1280, "height": 800})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    return desk.new_page(), phone.new_page()


def two_buyers(browser, url: str) -> float:
    """The two buyers' steps; returns the seconds from A's hold shown to B seeing it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    a, b = desk_and_phone(browser)
    for page in (a, b):
        page.goto(url)
        expect(page.get_by_test_id("connection")).to_have_text("Live")
    b_focus = b.get_by_test_id("seat-focus")
    a_focus = a.get_by_test_id("seat-focus")

    # B picks A-1-2 and A-1-3 (and leaves its cursor on A-1-2).
    focus_seat(b, ["ArrowRight"])
    expect(b_focus).to_have_text("A row 1 seat 2, free, €50.00")
    b.keyboard.press("Space")
    b.keyboard.press("ArrowRight")
    b.keyboard.press("Space")
    expect(b_focus).to_have_text("A row 1 seat 3, selected, €50.00")
    b.keyboard.press("ArrowLeft")
    expect(b_focus).to_have_text("A row 1 seat 2, selected, €50.00")
    shot(b, "01-b-selected-two")

    # A holds A-1-1 and A-1-2.
    focus_seat(a, [])
    expect(a_focus).to_have_text("A row 1 seat 1, free, €50.00")
    a.keyboard.press("Space")
    a.keyboard.press("ArrowRight")
    a.keyboard.press("Space")
    a.get_by_test_id("hold-button").click()
    expect(a.get_by_test_id("hold-panel")).to_be_visible()
    held_at = time.monotonic()
    expect(a.get_by_test_id("hold-countdown")).to_have_text(COUNTDOWN)
    expect(a_focus).to_have_text("A row 1 seat 2, held by you, €50.00")
    shot(a, "02-a-holds-two")

    # B sees A-1-2 turn "held by others" (its cursor is on it) and the section count drop.
    expect(b_focus).to_have_text("A row 1 seat 2, held by others, €50.00")
    latency_s = time.monotonic() - held_at
    expect(b.get_by_test_id("section-stats")).to_contain_text("10 left in A")
    shot(b, "03-b-sees-them-held")

    # A confirms.
    a.get_by_test_id("hold-confirm").click()
    expect(a.get_by_test_id("reservation")).to_contain_text("Reserved")
    expect(b_focus).to_have_text("A row 1 seat 2, reserved, €50.00")
    shot(a, "04-a-reserved")

    # B tries to hold its two picks: A-1-2 is lost, A-1-3 stays selected, and B holds it.
    b.get_by_test_id("hold-button").click()
    conflict = b.get_by_test_id("conflict")
    expect(conflict).to_contain_text("A-1-2")
    expect(conflict).not_to_contain_text("A-1-3")
    focus_seat(b, ["ArrowRight", "ArrowRight"])
    expect(b_focus).to_have_text("A row 1 seat 3, selected, €50.00")
    shot(b, "05-b-conflict")
    b.get_by_test_id("hold-button").click()
    expect(b.get_by_test_id("hold-panel")).to_contain_text("A-1-3")

    # The hold survives a reload in the same browser session.
    b.reload()
    expect(b.get_by_test_id("connection")).to_have_text("Live")
    expect(b.get_by_test_id("hold-panel")).to_contain_text("A-1-3")
    focus_seat(b, ["ArrowRight", "ArrowRight"])
    expect(b_focus).to_have_text("A row 1 seat 3, held by you, €50.00")
    shot(b, "06-b-hold-after-reload")

    return latency_s


def test_the_admin_box_office_figures_follow_a_hold_without_a_reload(stack):
    event = sale_open()
    pipeline_wait(stack, event)
    get_user_model().objects.create_superuser("boxoffice", password="box-office-pass")
    section_b = event.venue.sections.get(name="B").pk
    with chromium() as browser:
        box_office_live(browser, stack.url, event.pk, section_b)


def box_office_live(browser, base_url: str, event_id: int, section_id: int) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base_url}/admin/reservations/event/{event_id}/change/")
    page.get_by_label("Username").fill("boxoffice")
    page.get_by_label("Password").fill("box-office-pass")
    page.get_by_role("button", name="Log in").click()
    section_b = page.locator(f'#box-office tr[data-section="{section_id}"]')
    expect(section_b.locator('[data-stat="total"]')).to_have_text("6")
    # A reload would drop this mark: it proves the figures below changed in place.
    page.evaluate("window.boxOfficeNotReloaded = true")

    hold_over_http(base_url, event_id, ["B-1-1", "B-1-2"])

    # Relay, broker and the stats worker's group join before the API has it: seconds.
    live = {"timeout": PIPELINE_S * 1000}
    expect(section_b.locator('[data-stat="held"]')).to_have_text("2", **live)
    expect(section_b.locator('[data-stat="free"]')).to_have_text("4", **live)
    expect(page.locator('#box-office tr[data-section="event"] [data-stat="held"]')).to_have_text(
        "2", **live
    )
    assert page.evaluate("window.boxOfficeNotReloaded") is True
    shot(page, "20-admin-box-office-live")
    page.close()
