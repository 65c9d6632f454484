"""The event WebSocket through the real ASGI stack (origin check, sessions, routing), the
real per-process fan-out over Redis Pub/Sub and the real seat inventory."""

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from apps.core.envelopes import envelope_parse
from apps.core.redis import redis_client_get
from apps.gateway import snapshots
from apps.gateway.bridge import live_frame
from apps.gateway.consumers import FLOOD_MAX_MESSAGES
from apps.gateway.fanout import live_channel
from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory, SeatFactory, SectionFactory
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10  # seconds; a guard against hanging, not a speed assertion
ORIGIN_OK = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture
def one_row_sale() -> Event:
    """An event on sale: one row, seats A-1-1..3 at 50.00."""
    return sale_open()


def sale_open() -> Event:
    """An event on sale: seats A-1-1..3 at 50.00 (test_bridge.py's too)."""
    section = SectionFactory(name="A", category__price=Decimal("50.00"))
    for number in (1, 2, 3):
        SeatFactory(section=section, row="1", number=number)
    event = EventFactory(venue=section.venue, sale_status=Event.SaleStatus.DRAFT)
    services.event_open_sale(event=event)
    return event


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Run an async test body (no pytest-asyncio here); DB calls go to this thread."""
    async_to_sync(body)()


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds, letting the loop (the fan-out, the consumers) run;
    at most TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {TIMEOUT} s waiting for {what}"
        await asyncio.sleep(0.01)


def frames_handed_out() -> float:
    """Frames this process's fan-out has handed to its sockets (sent, or held back for a
    snapshot) and snapshots sent: the FRAMES_SENT counter."""
    return REGISTRY.get_sample_value("seats_ws_frames_sent_total") or 0.0


def communicator(event_id: int, headers: list | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/events/{event_id}/", headers=ORIGIN_OK if headers is None else headers
    )


async def connected(event_id: int) -> tuple[WebsocketCommunicator, dict]:
    """A connected client and its first message, which must be the snapshot."""
    client = communicator(event_id)
    accepted, _ = await client.connect(timeout=TIMEOUT)
    assert accepted
    snapshot = await client.receive_json_from(timeout=TIMEOUT)
    assert snapshot["type"] == "snapshot"
    return client, snapshot


async def close_code(client: WebsocketCommunicator) -> int:
    output = await client.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close", output
    return output["code"]


def envelope_text(event_id: int, seq: int, seats: list[str]) -> str:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": "seat.held",
            "event_id": event_id,
            "seq": seq,
            "occurred_at": "2026-11-25T10:15:00.123Z",
            "data": {"seats": seats, "hold_token": f"{event_id}.t{seq}"},
        }
    )


def states(snapshot: dict) -> str:
    return "".join(row["states"] for s in snapshot["seats"] for row in s["rows"])


def test_snapshot_on_connect(one_row_sale):
    async def body():
        client, snapshot = await connected(one_row_sale.pk)
        assert snapshot["seq"] == 0 and snapshot["event_id"] == one_row_sale.pk
        assert [s["name"] for s in snapshot["seats"]] == ["A"]
        assert snapshot["seats"][0]["rows"] == [{"row": "1", "numbers": [1, 2, 3], "states": "fff"}]
        assert snapshot["stats"]["total"] == 3 and snapshot["stats"]["free"] == 3
        assert snapshot["stats"]["event_id"] == one_row_sale.pk
        await client.disconnect()

    run(body)


async def joined(event_id: int) -> None:
    """Until the event's live channel has its subscriber: a socket that connected has then
    joined the fan-out, and takes every frame published from now on."""
    channel = live_channel(event_id)
    await eventually(
        lambda: dict(redis_client_get().pubsub_numsub(channel))[channel] == 1, "the subscribe"
    )


def publish(event_id: int, texts: list[str]) -> str:
    """What the bridge does with a batch: one frame of the event, on its live channel."""
    frame = live_frame(event_id, [envelope_parse(text) for text in texts])
    redis_client_get().publish(live_channel(event_id), frame)
    return frame


def test_a_frame_reaches_every_socket_of_the_event_as_published(one_row_sale):
    async def body():
        client, _ = await connected(one_row_sale.pk)
        other, _ = await connected(one_row_sale.pk)
        frame = publish(
            one_row_sale.pk, [envelope_text(one_row_sale.pk, seq, [f"A-1-{seq}"]) for seq in (1, 2)]
        )
        for c in (client, other):
            assert await c.receive_from(timeout=TIMEOUT) == frame
        assert json.loads(frame)["items"][1]["seq"] == 2
        await client.disconnect()
        await other.disconnect()

    run(body)


def test_other_events_frames_are_not_sent(one_row_sale):
    async def body():
        client, _ = await connected(one_row_sale.pk)
        publish(one_row_sale.pk + 1000, [envelope_text(one_row_sale.pk + 1000, 1, [])])
        mine = publish(one_row_sale.pk, [envelope_text(one_row_sale.pk, 1, ["A-1-1"])])
        assert await client.receive_from(timeout=TIMEOUT) == mine
        await client.disconnect()

    run(body)


def test_one_subscription_per_event_and_process_whatever_the_sockets(one_row_sale):
    channel = live_channel(one_row_sale.pk)

    def subscribers() -> int:
        return dict(redis_client_get().pubsub_numsub(channel))[channel]

    async def body():
        clients = [(await connected(one_row_sale.pk))[0] for _ in range(3)]
        assert subscribers() == 1
        for client in clients:
            await client.disconnect()
        # The unsubscribe is sent as the last socket leaves.
        await eventually(lambda: subscribers() == 0, "the unsubscribe")

    run(body)


@pytest.fixture
def snapshot_release(monkeypatch) -> threading.Event:
    """Snapshot builds wait until the test sets this: frames published meanwhile are held."""
    release = threading.Event()
    build = snapshots._build

    def slow_build(event_id: int) -> snapshots.SharedSnapshot:
        release.wait(TIMEOUT)
        return build(event_id)

    monkeypatch.setattr(snapshots, "_build", slow_build)
    return release


def test_frames_published_while_the_snapshot_is_built_come_after_it(one_row_sale, snapshot_release):
    frame_delivered = snapshot_release  # the frame is published (and held back) first

    async def body():
        client = communicator(one_row_sale.pk)
        accepted, _ = await client.connect(timeout=TIMEOUT)
        assert accepted
        await joined(one_row_sale.pk)  # the socket takes frames from now on
        handed_out = frames_handed_out()
        frame = publish(one_row_sale.pk, [envelope_text(one_row_sale.pk, 1, ["A-1-1"])])
        await eventually(lambda: frames_handed_out() == handed_out + 1, "the frame held back")
        frame_delivered.set()
        first = await client.receive_json_from(timeout=TIMEOUT)
        assert first["type"] == "snapshot"
        assert await client.receive_from(timeout=TIMEOUT) == frame
        await client.disconnect()

    run(body)


def test_sockets_connecting_together_share_one_snapshot_build(one_row_sale, monkeypatch):
    builds = []
    build = snapshots._build

    def counted_build(event_id: int) -> snapshots.SharedSnapshot:
        builds.append(event_id)
        threading.Event().wait(0.3)  # long enough for all of them to ask meanwhile
        return build(event_id)

    monkeypatch.setattr(snapshots, "_build", counted_build)

    async def body():
        clients = [communicator(one_row_sale.pk) for _ in range(20)]
        # The first build starts with the first socket; the others ask while it runs.
        # Those that joined after it started wait for the next one, which serves them all.
        results = await asyncio.gather(*(c.connect(timeout=TIMEOUT) for c in clients))
        assert all(accepted for accepted, _ in results)
        snapshots_got = [await c.receive_json_from(timeout=TIMEOUT) for c in clients]
        assert {s["type"] for s in snapshots_got} == {"snapshot"}
        assert len(builds) <= 3
        for c in clients:
            await c.disconnect()

    run(body)


def test_resync_sends_a_fresh_snapshot(one_row_sale):
    async def body():
        client, first = await connected(one_row_sale.pk)
        from channels.db import database_sync_to_async

        hold = await database_sync_to_async(services.hold_create)(
            event_id=one_row_sale.pk, holder="session:someone", seats=["A-1-2"]
        )
        await client.send_json_to({"type": "resync"})
        fresh = await client.receive_json_from(timeout=TIMEOUT)
        assert fresh["type"] == "snapshot"
        assert fresh["seq"] == hold.seq > first["seq"]
        assert states(fresh) == "fhf"
        await client.disconnect()

    run(body)


def test_ping_pong(one_row_sale):
    async def body():
        client, _ = await connected(one_row_sale.pk)
        await client.send_json_to({"type": "ping"})
        assert await client.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
        await client.disconnect()

    run(body)


def test_origin_of_another_host_is_refused(one_row_sale):
    async def body():
        client = communicator(
            one_row_sale.pk, headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")]
        )
        accepted, _ = await client.connect(timeout=TIMEOUT)
        assert not accepted
        await client.disconnect()

    run(body)


def test_unknown_and_draft_events_close_4404(one_row_sale):
    draft = EventFactory(venue=one_row_sale.venue, sale_status=Event.SaleStatus.DRAFT)

    async def body():
        for event_id in (one_row_sale.pk + 1000, draft.pk):
            client = communicator(event_id)
            accepted, _ = await client.connect(timeout=TIMEOUT)
            assert accepted  # accepted first, so the browser sees the code
            assert await close_code(client) == 4404
            await client.disconnect()

    run(body)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"type": "hold", "seats": ["A-1-1"]}',
        "{}",
        json.dumps({"type": "ping", "pad": "x" * 5000}),
        b"\x00binary",
    ],
    ids=["invalid-json", "not-an-object", "unknown-type", "no-type", "too-big", "binary"],
)
def test_garbage_closes_4400(one_row_sale, frame):
    async def body():
        client, _ = await connected(one_row_sale.pk)
        if isinstance(frame, bytes):
            await client.send_to(bytes_data=frame)
        else:
            await client.send_to(text_data=frame)
        assert await close_code(client) == 4400
        await client.disconnect()

    run(body)


def test_flood_closes_4429(one_row_sale):
    async def body():
        client, _ = await connected(one_row_sale.pk)
        for _ in range(FLOOD_MAX_MESSAGES):
            await client.send_json_to({"type": "ping"})
            assert await client.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
        await client.send_json_to({"type": "ping"})
        assert await close_code(client) == 4429
        await client.disconnect()

    run(body)


def test_a_buyers_own_hold_is_mine_in_their_snapshot(one_row_sale):
    from django.conf import settings
    from django.test import Client

    browser = Client()
    browser.session  # noqa: B018 - saves a session and sets its cookie, as a page load would
    response = browser.post(
        f"/api/events/{one_row_sale.pk}/holds",
        data=json.dumps({"seats": ["A-1-2"]}),
        content_type="application/json",
    )
    assert response.status_code == 201
    session_id = browser.cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={session_id}".encode()

    async def body():
        mine = communicator(one_row_sale.pk, headers=[*ORIGIN_OK, (b"cookie", cookie)])
        accepted, _ = await mine.connect(timeout=TIMEOUT)
        assert accepted
        snapshot = await mine.receive_json_from(timeout=TIMEOUT)
        assert snapshot["type"] == "snapshot" and snapshot["seq"] == response.json()["seq"]
        # The seat states are shared by every socket; whose holds are whose is not.
        assert (states(snapshot), snapshot["mine"]) == ("fhf", ["A-1-2"])
        anonymous, theirs = await connected(one_row_sale.pk)  # someone else's hold: just held
        assert (states(theirs), theirs["mine"]) == ("fhf", [])
        await mine.disconnect()
        await anonymous.disconnect()

    run(body)


def test_an_event_on_sale_but_not_in_the_inventory_closes_4409(one_row_sale):
    # On sale in the database, but event_open_sale never loaded its seats into Redis.
    listed = EventFactory(venue=one_row_sale.venue, sale_status=Event.SaleStatus.ON_SALE)

    async def body():
        client = communicator(listed.pk)
        accepted, _ = await client.connect(timeout=TIMEOUT)
        assert accepted  # accepted first, so the browser sees the code
        assert await close_code(client) == 4409
        await client.disconnect()

    run(body)


def test_each_process_reports_its_sockets_of_the_event_for_the_bridge(one_row_sale):
    from apps.gateway.fanout import live_sockets_key

    key = live_sockets_key(one_row_sale.pk)

    def reported() -> list[int]:
        """Each process's count of the event's sockets (here one process: the test's)."""
        return [int(n) for n in redis_client_get().hvals(key)]

    async def body():
        clients = [(await connected(one_row_sale.pk))[0] for _ in range(3)]
        await eventually(lambda: reported() == [3], "three sockets reported")
        await clients[0].disconnect()
        await eventually(lambda: reported() == [2], "two sockets reported")
        for client in clients[1:]:
            await client.disconnect()
        await eventually(lambda: reported() == [], "the report taken back")

    run(body)


def test_frames_held_back_for_a_slow_snapshot_are_bounded(one_row_sale, snapshot_release):
    from apps.gateway.consumers import MAX_WAITING_FRAMES

    release = snapshot_release

    async def body():
        client = communicator(one_row_sale.pk)
        accepted, _ = await client.connect(timeout=TIMEOUT)
        assert accepted
        await joined(one_row_sale.pk)
        handed_out = frames_handed_out()
        frames = [
            publish(one_row_sale.pk, [envelope_text(one_row_sale.pk, seq, ["A-1-1"])])
            for seq in range(1, MAX_WAITING_FRAMES + 51)
        ]
        await eventually(
            lambda: frames_handed_out() == handed_out + len(frames), "every frame handed out"
        )
        release.set()
        assert (await client.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
        held = [await client.receive_from(timeout=TIMEOUT) for _ in range(MAX_WAITING_FRAMES)]
        assert held == frames[:MAX_WAITING_FRAMES]  # the oldest, in order; the rest dropped
        assert await client.receive_nothing(timeout=0.5)
        await client.disconnect()

    run(body)
