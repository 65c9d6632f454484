"""The waiting room on the live socket (docs/api.md, Waiting room): through the real ASGI
stack (origin check, cookies, sessions), the real fan-out over Redis Pub/Sub and the real
room scripts. Buyers join over HTTP and hand their cookies to the socket, as a browser
does; admissions are the ticker's ``services.rooms_advance()``."""

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.waitingroom.passes import pass_cookie_name
from apps.waitingroom.tests.helpers import START_MS, browser, post, tick
from config.asgi import application

# The consumer reads on other threads: what the test wrote must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10  # seconds; a guard against hanging, not a speed assertion
QUIET = 0.3  # seconds without a frame that count as "nothing more came"
ORIGIN_OK = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Run an async test body (no pytest-asyncio here)."""
    async_to_sync(body)()


def cookie_header(client: Client | None) -> list[tuple[bytes, bytes]]:
    """The browser's cookies (session, pass) as its socket would send them."""
    if client is None or not client.cookies:
        return []
    text = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    return [(b"cookie", text.encode())]


async def connected(event_id: int, client: Client | None = None) -> tuple:
    socket = WebsocketCommunicator(
        application, f"/ws/events/{event_id}/", headers=[*ORIGIN_OK, *cookie_header(client)]
    )
    accepted, _ = await socket.connect(timeout=TIMEOUT)
    assert accepted
    return socket, await socket.receive_json_from(timeout=TIMEOUT)


def join(client: Client, event_id: int) -> dict:
    response = post(client, f"/api/events/{event_id}/room")
    assert response.status_code == 200
    return response.json()


def look(client: Client, event_id: int) -> dict:
    """The room as the browser sees it over HTTP."""
    response = client.get(f"/api/events/{event_id}/room")
    assert response.status_code == 200
    return response.json()


def test_a_waiting_buyer_gets_their_place_then_the_rooms_figures_and_no_seats(room, clock):
    clock.now = START_MS
    alice, bob = browser(), browser()
    join(alice, room.event_id)
    join(bob, room.event_id)

    async def body():
        socket, first = await connected(room.event_id, bob)
        assert first["type"] == "room"
        assert (first["state"], first["serving"], first["waiting"]) == ("open", 0, 2)
        assert (first["place"]["ticket"], first["place"]["position"]) == (2, 2)
        assert await socket.receive_nothing(timeout=QUIET)  # no snapshot, no seats

        tick(clock)  # Alice admitted: the tick tells every waiting socket

        frame = await socket.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "room"
        assert "place" not in frame  # the same bytes for everyone: no one's place
        assert (frame["serving"], frame["waiting"], frame["state"]) == (1, 1, "open")
        await socket.disconnect()

    run(body)


def test_a_visitor_without_a_place_waits_too(room, clock):
    clock.now = START_MS

    async def body():
        socket, first = await connected(room.event_id)  # no cookies at all
        assert (first["type"], first["state"], first["place"]) == ("room", "open", None)
        assert await socket.receive_nothing(timeout=QUIET)
        await socket.disconnect()

    run(body)


def test_an_early_arrival_gets_their_ticket_once_drawn(room, clock):
    early = [browser() for _ in range(3)]
    for client in early:
        join(client, room.event_id)  # a minute before the start
    carol = early[1]

    async def body():
        socket, first = await connected(room.event_id, carol)
        assert (first["type"], first["state"], first["drawn"]) == ("room", "before", False)
        assert first["place"]["ticket"] is None

        clock.now = START_MS
        tick(clock, 0)  # the tick at the start draws, admitting no one yet

        mine = await socket.receive_json_from(timeout=TIMEOUT)
        assert (mine["type"], mine["state"], mine["drawn"]) == ("room", "open", True)
        drawn = (await sync_to_async(look)(carol, room.event_id))["place"]["ticket"]
        assert drawn in (1, 2, 3)
        assert mine["place"]["ticket"] == drawn
        assert mine["place"]["position"] == drawn

        tick(clock)  # from now on, the figures for everyone
        frame = await socket.receive_json_from(timeout=TIMEOUT)
        assert ("place" not in frame, frame["serving"]) == (True, 1)
        await socket.disconnect()

    run(body)


def test_resync_sends_the_buyers_own_frame(room, clock):
    clock.now = START_MS
    alice, bob = browser(), browser()
    join(alice, room.event_id)
    join(bob, room.event_id)

    async def body():
        socket, _ = await connected(room.event_id, bob)
        tick(clock)
        assert "place" not in await socket.receive_json_from(timeout=TIMEOUT)

        await socket.send_json_to({"type": "resync"})

        mine = await socket.receive_json_from(timeout=TIMEOUT)
        assert mine["type"] == "room"
        assert (mine["serving"], mine["place"]["ticket"], mine["place"]["position"]) == (1, 2, 1)
        await socket.disconnect()

    run(body)


def test_an_admitted_buyer_with_the_pass_gets_the_seat_map(room, clock):
    clock.now = START_MS
    alice = browser()
    join(alice, room.event_id)
    tick(clock)
    passless = Client()
    passless.cookies[settings.SESSION_COOKIE_NAME] = alice.cookies[
        settings.SESSION_COOKIE_NAME
    ].value
    assert post(alice, f"/api/events/{room.event_id}/room/pass").status_code == 200
    assert pass_cookie_name(room.event_id) in alice.cookies

    async def body():
        socket, first = await connected(room.event_id, alice)
        assert (first["type"], first["event_id"]) == ("snapshot", room.event_id)
        assert first["stats"]["free"] == 4
        # The same buyer without the pass (another tab before it came): still waiting.
        waiting, place = await connected(room.event_id, passless)
        assert (place["type"], place["place"]["admitted"]) == ("room", True)
        await socket.disconnect()
        await waiting.disconnect()

    run(body)


def test_when_the_room_is_off_everyone_gets_the_seat_map(room, clock, update):
    clock.now = START_MS
    bob = browser()
    join(bob, room.event_id)

    async def body():
        socket, first = await connected(room.event_id, bob)
        assert first["type"] == "room"

        await sync_to_async(update)(room, enabled=False)  # on the test's own DB connection

        off = await socket.receive_json_from(timeout=TIMEOUT)
        assert (off["type"], off["state"]) == ("room", "off")  # open the map again
        await socket.disconnect()
        for client in (bob, None):
            again, snapshot = await connected(room.event_id, client)
            assert (snapshot["type"], snapshot["stats"]["free"]) == ("snapshot", 4)
            await again.disconnect()

    run(body)


def test_an_early_arrival_hears_that_the_room_went_off_after_the_draw(room, clock, update):
    carol = browser()
    join(carol, room.event_id)  # before the start: no ticket yet

    async def body():
        socket, first = await connected(room.event_id, carol)
        assert first["place"]["ticket"] is None
        clock.now = START_MS
        await sync_to_async(join)(browser(), room.event_id)  # the first join after it draws

        await sync_to_async(update)(room, enabled=False)  # before any tick told the sockets

        off = await socket.receive_json_from(timeout=TIMEOUT)
        assert (off["type"], off["state"], off["drawn"]) == ("room", "off", True)
        await socket.disconnect()

    run(body)
