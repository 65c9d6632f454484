"""End to end: holds on the write side → outbox relay → Kafka → the gateway bridge (and the
stats projector, for stats.updated) → the event's live frames → a WebSocket of the event.
Real Redis, broker and Postgres."""

import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from kafka import KafkaConsumer

from apps.core.kafka import topics_ensure
from apps.core.tests.pipeline import WAIT_S, Running, relay
from apps.core.workers import worker_class_get
from apps.gateway.bridge import GatewayBridge
from apps.gateway.tests.test_consumers import TIMEOUT, connected, run, sale_open
from apps.reservations import services
from apps.reservations.models import Event
from apps.stats.workers import StatsWorker

pytestmark = pytest.mark.django_db(transaction=True)

HOLDS = 3


@pytest.fixture
def one_row_sale() -> Event:
    """Seats A-1-1..3 on sale, as the socket tests' (test_consumers.py)."""
    return sale_open()


def holds_make(event_id: int) -> list[int]:
    return [
        services.hold_create(event_id=event_id, holder=f"session:buyer{n}", seats=[f"A-1-{n}"]).seq
        for n in range(1, HOLDS + 1)
    ]


def test_the_bridge_is_registered_as_gateway():
    assert worker_class_get("gateway") is GatewayBridge
    assert GatewayBridge.topic_settings == ("KAFKA_TOPIC_SEAT_EVENTS", "KAFKA_TOPIC_STATS_EVENTS")


def test_published_envelopes_reach_the_events_sockets_in_order(one_row_sale):
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])

    async def body():
        client, snapshot = await connected(one_row_sale.pk)
        assert snapshot["seq"] == 0
        seqs = await sync_to_async(holds_make)(one_row_sale.pk)
        assert await sync_to_async(relay)() == HOLDS
        received: list[dict] = []
        # The stats projector publishes a coalesced stats.updated once the holds are applied;
        # it is consistent with the last seat seq and arrives over the other topic.
        while not any(m["type"] == "stats.updated" and m["seq"] == seqs[-1] for m in received):
            frame = json.loads(await client.receive_from(timeout=WAIT_S))
            assert (frame["type"], frame["event_id"]) == ("changes", one_row_sale.pk)
            received += frame["items"]
        seat = [m for m in received if m["type"].startswith("seat.")]
        assert [m["seq"] for m in seat] == seqs  # each once, in order
        assert [m["type"] for m in seat] == ["seat.held"] * HOLDS
        assert [m["data"]["seats"] for m in seat] == [[f"A-1-{n}"] for n in range(1, HOLDS + 1)]
        await client.disconnect()

    with Running(GatewayBridge, StatsWorker):
        run(body)


def test_the_bridge_writes_nothing_to_the_database(one_row_sale, django_assert_num_queries):
    """Forwarding needs no cursor rows: a client drops what it has by seq."""
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS, settings.KAFKA_TOPIC_STATS_EVENTS])
    holds_make(one_row_sale.pk)
    relay()
    bridge = GatewayBridge(group_id=f"test-{uuid.uuid4().hex[:10]}")
    reader = KafkaConsumer(
        settings.KAFKA_TOPIC_SEAT_EVENTS,
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        auto_offset_reset="earliest",
        consumer_timeout_ms=TIMEOUT * 1000,
    )
    try:
        records = []
        for record in reader:
            records.append(record)
            if len(records) == HOLDS:
                break
    finally:
        reader.close()
    assert len(records) == HOLDS
    with django_assert_num_queries(0):
        result = bridge.batch_process(records)
    bridge.close()
    assert result.applied == HOLDS


def test_the_coalescing_window_grows_with_the_audience_within_its_bounds(settings):
    from apps.gateway.bridge import coalesce_window_s

    settings.LIVE_COALESCE_MS, settings.LIVE_COALESCE_MAX_MS = 50, 400
    settings.LIVE_WRITES_PER_S = 8_000
    assert coalesce_window_s(0) == coalesce_window_s(100) == 0.05  # a few maps: at once
    assert coalesce_window_s(1_000) == 0.125  # 8 frames/s × 1,000 sockets
    assert coalesce_window_s(2_500) == 0.3125
    assert coalesce_window_s(50_000) == 0.4


def test_a_frame_carries_what_a_map_applies_in_order_and_only_the_newest_stats():
    from apps.core.envelopes import envelope_parse
    from apps.gateway.bridge import live_frame

    def envelope(seq: int, kind: str, data: dict) -> object:
        envelope = {"id": f"m{seq}{kind}", "type": kind, "event_id": 7, "seq": seq}
        return envelope_parse({**envelope, "occurred_at": "2026-11-30T10:00Z", "data": data})

    held = {"seats": ["A-1-1"], "hold_token": "7.abc", "expires_at": "2026-11-30T10:10:00Z"}
    frame = json.loads(
        live_frame(
            7,
            [
                envelope(1, "seat.held", held),
                envelope(1, "stats.updated", {"seq": 1, "free": 9}),
                envelope(2, "seat.released", {"seats": ["A-1-1"], "reason": "released"}),
                envelope(2, "stats.updated", {"seq": 2, "free": 10}),
            ],
        )
    )
    assert frame == {
        "type": "changes",
        "event_id": 7,
        "items": [
            {"type": "seat.held", "seq": 1, "data": {"seats": ["A-1-1"], "hold_token": "7.abc"}},
            {"type": "seat.released", "seq": 2, "data": {"seats": ["A-1-1"]}},
            {"type": "stats.updated", "seq": 2, "data": {"seq": 2, "free": 10}},
        ],
    }


def test_the_bridge_asks_the_broker_not_to_hold_its_fetches_long():
    # The embedded broker answers a held fetch only at its deadline: that deadline is
    # the live map's latency when changes are sparse (docs/architecture.md, Gateway).
    from apps.gateway.bridge import LIVE_FETCH_WAIT_MS

    assert GatewayBridge(group_id="test").kafka_config["fetch_max_wait_ms"] == LIVE_FETCH_WAIT_MS
    assert (
        GatewayBridge(group_id="test", fetch_max_wait_ms=7).kafka_config["fetch_max_wait_ms"] == 7
    )
