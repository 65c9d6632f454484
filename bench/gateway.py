"""WebSocket fan-out: delay from a hold's HTTP response to every client's seat.held.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/gateway.py

For each channels_redis layer ("core", "pubsub"):

1. a daphne on a free port (its layer chosen by ``CHANNEL_LAYER``), the outbox relay and
   the ``gateway`` bridge in threads of this process, all on this run's own Redis prefix,
   Kafka topics and throwaway Postgres database (created, migrated, dropped);
2. ``--clients`` WebSocket clients (default 1,000, at most 5,000) on one event, opened at
   ``--ramp`` per second (default 100), each waiting
   for its snapshot;
3. a steady stream of one-seat HTTP holds (``--rate`` per second for ``--seconds``), each
   from a new anonymous buyer;
4. per (client, hold): receipt time − the hold's HTTP response time, both on this process's
   monotonic clock. Printed: p50/p99/max, messages delivered per second, and losses.

Needs a Kafka-compatible broker (``scripts/backing_services.py exec -- …``), Redis and
Postgres. Prints figures; never asserts timings (README, Benchmarks). The clients, the relay and the
bridge share one machine (and the clients one event loop) with the server, so the figures
are an upper bound on the delay, not a capacity plan.
"""

import argparse
import asyncio
import http.client
import json
import os
import threading
import time

from support import (
    RUN,
    SEAT_TOPIC,
    STATS_TOPIC,
    Server,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_topics_delete,
    percentile,
    redis_cleanup,
    relay_and_bridge_start,
)

MAX_CLIENTS = 5_000
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "apps.gateway.layers.BoundedRedisPubSubChannelLayer",
}

bench_env_setup(
    defaults={"DJANGO_DEBUG": "false"},
    KAFKA_TOPIC_SEAT_EVENTS=SEAT_TOPIC,
    KAFKA_TOPIC_STATS_EVENTS=STATS_TOPIC,
)

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402


def layer_settings(kind: str) -> dict:
    """The layer daphne builds from ``CHANNEL_LAYER=<kind>`` (config/settings/base.py), for
    the bridge of this process, which loaded its settings before choosing a layer."""
    limits = (
        {"capacity": 200, "expiry": 30, "group_expiry": 86_400}
        if kind == "core"
        else {"capacity": 200}
    )
    return {
        "default": {
            "BACKEND": LAYERS[kind],
            "CONFIG": {
                "hosts": [{"address": settings.REDIS_URL, "max_connections": 2_000}],
                "prefix": f"{settings.SEATS_REDIS_PREFIX}:asgi",
                **limits,
            },
        }
    }


# --- setup and cleanup ---------------------------------------------------------------------


def cleanup() -> None:
    redis_cleanup()
    bench_topics_delete()


def event_create(seats: int, kind: str) -> int:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.reservations import services
    from apps.reservations.layouts import SeatGrid
    from apps.reservations.models import Event, PriceCategory, Section, Venue

    venue = Venue.objects.create(name=f"Bench hall {RUN} {kind}", focal_x=0.0, focal_y=-50.0)
    category = PriceCategory.objects.create(venue=venue, name="All", price=Decimal("50"))
    section = Section.objects.create(venue=venue, name="A", category=category)
    rows = max(1, seats // 50)
    services.section_seats_generate(section=section, grid=SeatGrid(rows=rows, seats_per_row=50))
    event = Event.objects.create(
        venue=venue,
        name=f"Bench show {RUN}",
        starts_at=timezone.now() + timedelta(days=30),
        sale_status=Event.SaleStatus.DRAFT,
    )
    services.event_open_sale(event=event)
    return event.pk


def seat_keys(event_id: int) -> list[str]:
    from apps.reservations.models import Event

    return list(
        Event.objects.get(pk=event_id)
        .venue.seats.order_by("row", "number")
        .values_list("key", flat=True)
    )


# --- load ------------------------------------------------------------------------------------


def holds_stream(
    port: int,
    event_id: int,
    seats: list[str],
    rate: float,
    seconds: float,
    responded: dict[int, float],
) -> None:
    """One-seat holds at a steady rate, each from a new buyer; seq → response time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    interval, start = 1.0 / rate, time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        conn.request(
            "POST",
            f"/api/events/{event_id}/holds",
            body=json.dumps({"seats": [seats[n % len(seats)]]}),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        response = conn.getresponse()
        body = response.read()
        now = time.perf_counter()
        if response.status == 201:
            responded[json.loads(body)["seq"]] = now


async def client(
    uri: str,
    origin: str,
    ready: asyncio.Event,
    done: asyncio.Event,
    received: list[tuple[int, float]],
    connected: list[int],
) -> None:
    async with websockets.connect(uri, origin=origin, max_size=None, open_timeout=60) as ws:
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot", snapshot
        connected[0] += 1
        if connected[0] == connected[1]:
            ready.set()
        while not done.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.perf_counter()
            message = json.loads(text)
            if message["type"] == "seat.held":
                received.append((message["seq"], now))


async def phase(kind: str, port: int, event_id: int, seats: list[str], args) -> None:
    uri = f"ws://127.0.0.1:{port}/ws/events/{event_id}/"
    origin = f"http://127.0.0.1:{port}"
    ready, done = asyncio.Event(), asyncio.Event()
    receipts: list[list[tuple[int, float]]] = [[] for _ in range(args.clients)]
    connected = [0, args.clients]
    began = time.perf_counter()
    tasks = []
    for i in range(args.clients):
        tasks.append(asyncio.create_task(client(uri, origin, ready, done, receipts[i], connected)))
        if i % 10 == 9:
            # Spread the connects (--ramp per second): this measures the broadcast, not a
            # connect storm, which one process serves at ~100 snapshots/s (docs/architecture.md).
            await asyncio.sleep(10 / args.ramp)
    await asyncio.wait_for(ready.wait(), timeout=120)
    print(f"  {kind}: {args.clients} clients connected in {time.perf_counter() - began:.1f} s")
    # The bridge joins its consumer group in a few seconds; holds before that would measure
    # the join, not the path.
    await asyncio.sleep(8)
    responded: dict[int, float] = {}
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(
        None, holds_stream, port, event_id, seats, args.rate, args.seconds, responded
    )
    # Wait for stragglers: every client has every hold, or a grace period ran out.
    deadline = time.perf_counter() + 15
    while time.perf_counter() < deadline:
        if all(len(r) >= len(responded) for r in receipts):
            break
        await asyncio.sleep(0.1)
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    delays, last, lost = [], 0.0, 0
    for r in receipts:
        got = dict(r)
        lost += sum(1 for seq in responded if seq not in got)
        for seq, at in got.items():
            if seq in responded:
                delays.append(at - responded[seq])
                last = max(last, at)
    delays.sort()
    first = min(responded.values(), default=0.0)
    span = max(last - first, 1e-9)
    print(
        f"  {kind}: {len(responded)} holds at {args.rate:g}/s × {args.clients} clients → "
        f"{len(delays):,} deliveries, {lost} lost; delay p50 {percentile(delays, 0.5) * 1000:.1f}"
        f" ms, p99 {percentile(delays, 0.99) * 1000:.1f} ms, max "
        f"{(delays[-1] if delays else float('nan')) * 1000:.1f} ms; "
        f"{len(delays) / span:,.0f} messages/s delivered"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=20.0, help="holds per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--layers", default="core,pubsub")
    parser.add_argument("--ramp", type=float, default=100.0, help="new sockets per second")
    args = parser.parse_args()
    args.clients = max(1, min(args.clients, MAX_CLIENTS))
    from apps.core.kafka import topics_ensure

    print(f"gateway bench {RUN}: {args.clients} clients, one event, one daphne process")
    bench_database_create()
    try:
        topics_ensure([SEAT_TOPIC, STATS_TOPIC])
        for kind in args.layers.split(","):
            # A fresh event per layer: the first seq of each phase is its own.
            event_id = event_create(seats=max(50, int(args.rate * args.seconds)), kind=kind)
            seats = seat_keys(event_id)
            settings.CHANNEL_LAYERS = layer_settings(kind)  # the bridge's (setting_changed-free)
            from channels.layers import channel_layers

            channel_layers.backends = {}
            # daphne's layer from the environment; the throttle lifted: measure the path.
            server = Server({"CHANNEL_LAYER": kind, "SEATS_COMMAND_RATE": "1000000/s"})
            stop = threading.Event()
            threads = relay_and_bridge_start(stop, group_id=f"bench-gateway-{RUN}-{kind}")
            try:
                server.wait_ready()
                asyncio.run(phase(kind, server.port, event_id, seats, args))
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
                server.stop(keep_log=os.environ.get("BENCH_KEEP_LOG") is not None)
    finally:
        bench_database_drop()
        cleanup()


if __name__ == "__main__":
    main()
