"""WebSocket fan-out: delay from a hold's HTTP response to every client's seat.held.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/gateway.py

For each channels_redis layer ("core", "pubsub"):

1. a daphne on a free port (the layer set before the ASGI app loads), the outbox relay and
   the ``gateway`` bridge in threads of this process, all on this run's own Redis prefix,
   Kafka topics and throwaway Postgres database (created, migrated, dropped);
2. ``--clients`` WebSocket clients (default 1,000, at most 5,000) on one event, each waiting
   for its snapshot;
3. a steady stream of one-seat HTTP holds (``--rate`` per second for ``--seconds``), each
   from a new anonymous buyer;
4. per (client, hold): receipt time − the hold's HTTP response time, both on this process's
   monotonic clock. Printed: p50/p99/max, messages delivered per second, and losses.

Needs a Kafka-compatible broker (``scripts/backing_services.py exec -- …``), Redis and
Postgres. Prints figures; never asserts timings (STYLE.md). The clients, the relay and the
bridge share one machine (and the clients one event loop) with the server, so the figures
are an upper bound on the delay, not a capacity plan.
"""

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN = uuid.uuid4().hex[:8]
PREFIX = f"seats-bench-{RUN}"
BENCH_DB = f"seats_bench_{RUN}"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DB_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{BENCH_DB}"
SEAT_TOPIC = f"seat-events-bench-{RUN}"
STATS_TOPIC = f"stats-events-bench-{RUN}"
MAX_CLIENTS = 5_000
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["SEATS_REDIS_PREFIX"] = PREFIX
os.environ["DATABASE_URL"] = BENCH_DB_URL
os.environ["KAFKA_TOPIC_SEAT_EVENTS"] = SEAT_TOPIC
os.environ["KAFKA_TOPIC_STATS_EVENTS"] = STATS_TOPIC
os.environ.setdefault("LOG_LEVEL", "ERROR")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402

# daphne in a child process, with CHANNEL_LAYERS replaced before the ASGI app is imported.
DAPHNE_BOOT = """
import json, os, sys
import django
from django.conf import settings
settings.CHANNEL_LAYERS = json.loads(os.environ["BENCH_CHANNEL_LAYERS"])
django.setup()
from daphne.cli import CommandLineInterface
CommandLineInterface().run(sys.argv[1:])
"""


def layer_settings(kind: str) -> dict:
    return {
        "default": {
            "BACKEND": LAYERS[kind],
            # redis-py 8 pools default to 100 connections and raise beyond; the core layer
            # takes one per concurrent group_add/send, so 1,000 connects exhaust it.
            "CONFIG": {
                "hosts": [{"address": settings.REDIS_URL, "max_connections": 2_000}],
                "prefix": f"{PREFIX}:asgi-{kind}",
            },
        }
    }


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- setup and cleanup ---------------------------------------------------------------------


def bench_database_create() -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, check=True
    )


def bench_database_drop() -> None:
    import psycopg
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )


def cleanup() -> None:
    from kafka import KafkaAdminClient

    from apps.core.consumers import dead_letter_topic
    from apps.core.redis import redis_client_get

    redis = redis_client_get()
    keys = list(redis.scan_iter(match=f"{PREFIX}:*", count=1000))
    for i in range(0, len(keys), 1000):
        redis.delete(*keys[i : i + 1000])
    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, request_timeout_ms=10_000
    )
    try:
        ours = {
            SEAT_TOPIC,
            STATS_TOPIC,
            dead_letter_topic(SEAT_TOPIC),
            dead_letter_topic(STATS_TOPIC),
        }
        doomed = sorted(set(admin.list_topics()) & ours)
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


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


# --- the processes: daphne, relay, bridge ----------------------------------------------------


class Server:
    """daphne on 127.0.0.1:<free port>, stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self, kind: str) -> None:
        self.port = free_port()
        self.log = Path(tempfile.gettempdir()) / f"seats-bench-gateway-{RUN}-{kind}.log"
        env = dict(os.environ)
        env.update(
            BENCH_CHANNEL_LAYERS=json.dumps(layer_settings(kind)),
            SEATS_COMMAND_RATE="1000000/s",  # measure the path, not the throttle
        )
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", DAPHNE_BOOT, "-b", "127.0.0.1", "-p", str(self.port)]
                + ["config.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/events/", headers={"Accept": "application/json"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if os.environ.get("BENCH_KEEP_LOG") is None:
            self.log.unlink(missing_ok=True)


def background(stop: threading.Event, kind: str) -> list[threading.Thread]:
    """The relay and the gateway bridge, as their management commands would run them."""
    from apps.gateway.bridge import GatewayBridge
    from apps.reservations.relay import outbox_relay_run

    bridge = GatewayBridge(group_id=f"bench-gateway-{RUN}-{kind}")
    threads = [
        threading.Thread(target=outbox_relay_run, kwargs={"stop": stop}, daemon=True),
        threading.Thread(target=bridge.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    return threads


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
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # no SYN flood against one accept queue
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
            server, stop = Server(kind), threading.Event()
            threads = background(stop, kind)
            try:
                server.wait_ready()
                asyncio.run(phase(kind, server.port, event_id, seats, args))
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
                server.stop()
    finally:
        bench_database_drop()
        cleanup()


if __name__ == "__main__":
    main()
