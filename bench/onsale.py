"""On-sale: the whole platform under a crowd of buyers, end to end, then its books checked.

    (cd bench/clients && npm ci)   # once: the Node clients
    .venv/bin/python scripts/backing_services.py exec -- \\
        env DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/onsale.py

    … bench/onsale.py --buyers 2000 --sockets 100 --ramp 20     # a small run first

1. A throwaway Postgres database (created, migrated, dropped) gets a ``--seats`` stadium
   (default 50,000: 50 sections × 40 rows × 25 seats, support.bench_event_create) and an
   event on it, opened for sale with a short hold ttl (``--hold-ttl``, 30 s), so that the
   holds buyers walk away from expire within the run; and a 10-seat event to warm up on.
2. Every process of the Procfile (proxy, web, ws, celery, relay, persistence, stats,
   gateway) starts under honcho (support.Stack) on this run's database, Redis prefix, Kafka
   topics and consumer groups, ports, run and metrics directories; a hold and a release on
   the warm-up event wait until its frame is on the live channel and both projections
   applied it.
3. ``--sockets`` live maps (default 1,000; bench/clients/crowd.mjs, as bench/gateway.py
   runs them) connect through the proxy before the sale opens, and stay for the whole sale.
4. ``--buyers`` buyers (default 20,000; bench/clients/buyers.mjs, in ``--buyer-procs`` Node
   processes, each with a keep-alive pool of ``--connections``) arrive evenly over
   ``--ramp`` seconds (default 120). Each is a new browser session (cookie jar, CSRF token
   from the page's cookie, an address of its own: the anonymous first command is
   throttled per address): it opens the event's page, holds 1–4 seats, picked at random
   side by side from the seat map (``GET /api/events/{id}/seats``, fetched by each Node
   process every ``--map-every`` seconds, not per buyer) or asked for as best available
   (half each), and retries a conflict up to ``--retries`` times; then reserves (70 %),
   releases (20 %) or walks away (10 %). Buyers pause ``--think`` seconds (± 50 %) before
   each step. The buying phase ends when every buyer is done or after ``--timeout``.
   With ``--room-rate N``, staff turn the event's waiting room on (sale starting at once,
   N buyers admitted a minute) once the live maps are connected, and each buyer joins it
   after opening the page (``POST …/room``), waits for its turn and takes its pass before
   holding. The room's ``serving`` is read once a second per Node process (``GET …/room``),
   standing in for the broadcast frames the seat map app's socket gets.
5. Meanwhile every metrics endpoint is scraped once a second (web's /metrics on its own
   port, the workers' on SEATS_METRICS_BASE + n; names in apps/core/metrics.py; missing
   ones print "n/a"), and the outbox length (entries kept until every projection applied
   them) and the projections' cursors are read directly (without the metrics).
6. After the buying phase: until every hold has ended (the Celery sweep expires the
   abandoned ones) and the pipeline has drained (outbox empty, both cursors at the
   inventory's seq, and the metrics say lag 0 and backlog 0 where they exist); the sockets
   get the last seq, and each change's occurred_at is read back from the seat topic.

Printed: how far the sale got (seats sold, when 50 %, 90 % and all were sold); per request
(page, join and pass with a room, map, hold picked, hold best, reserve, release) the count,
rate, p50/p99/max as the buyer saw it and p50/p99 on the wire (without the wait for one of
the pool's connections: past the server's capacity, requests queue in the clients), and
outcomes (granted, seats_unavailable, hold_expired, throttled, …, timeout); how the buyers'
visits ended; with a room, how long buyers waited in it and the rate passes were taken at;
a timeline (``--timeline`` seconds a row); the sockets' delay from a change's occurred_at
to its receipt (p50/p99/max), deliveries, frames, seqs lost or healed by a resync; the
largest consumer lag and outbox backlog seen (scraped, and read directly); the platform's
own counts (commands by outcome, holds expired, frames); the CPU each process used in the
buying phase. Then the checks, as a table with pass/fail: pipeline drained, holds ended,
``manage.py reconcile`` clean, no seat sold twice (Postgres: active ReservedSeat rows;
Redis: the reservations), reservations in Postgres = reserved seats in Redis (the
snapshot), stats = the snapshot (the projection and the stats API), the buyers' granted
reservations = Redis'. Exits non-zero if a check fails.

Everything runs on one machine: clients, the stack, Postgres, Redis and the broker share
its cores, so the figures are an upper bound on latency, not a capacity plan. Prints
figures; never asserts timings (README, Benchmarks). Redis keys under a random
``seats-bench-…`` prefix, the database, the topics and the consumer groups are deleted at
the end; ``BENCH_KEEP_LOG=1`` keeps the stack's log.
"""

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from gateway import NODE_CLIENTS, CrowdSpec, NodeCrowds, nofile_raise, pipeline_wait
from support import (
    BENCH_DB,
    PREFIX,
    ROOT,
    RUN,
    SEAT_TOPIC,
    STATS_TOPIC,
    MetricsScraper,
    Stack,
    bench_cleanup,
    bench_database_create,
    bench_env_setup,
    bench_event_create,
    percentile,
    samples_sum,
)
from wrkload import stack_ready

SECTIONS, ROWS = 50, 40
KINDS = ("page", "join", "pass", "map", "hold picked", "hold best", "reserve", "release")
COMMANDS = ("hold picked", "hold best", "reserve", "release")  # the POSTs
UNANSWERED = ("timeout", "network", "aborted")
# After the pipeline drained, how long the sockets get to receive the last change.
SOCKETS_GRACE_S = 60.0
# Scraped every second (apps/core/metrics.py; counters are read from the last scrape).
GAUGES = ("seats_consumer_lag", "seats_outbox_backlog", "seats_outbox_oldest_age_seconds")


class Record(NamedTuple):
    """One request of a buyer (bench/clients/buyers.mjs): t on the monotonic clock, ms until
    its answer was read, of which queued_ms waiting for one of the pool's connections."""

    kind: str
    outcome: str
    ms: float
    t: float
    seats: int
    queued_ms: float

    @property
    def end(self) -> float:
        return self.t + self.ms / 1000


# --- the event and the stack ----------------------------------------------------------------


def events_create(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The sale's event, on sale, and a 10-seat one to warm the pipeline up on."""
    began = time.monotonic()
    event = bench_event_create(
        seats=args.seats, sections=SECTIONS, rows=ROWS, hold_ttl_s=args.hold_ttl
    )
    warm = bench_event_create(seats=10, sections=1, rows=1, hold_ttl_s=args.hold_ttl)
    seats = event.venue.seats.count()
    print(
        f"  event {event.pk}: {seats:,} seats on sale in {time.monotonic() - began:.1f} s, "
        f"hold ttl {args.hold_ttl} s",
        flush=True,
    )
    return event, seats, warm


def stack_start() -> Stack:
    from apps.core.kafka import topics_ensure

    topics_ensure([SEAT_TOPIC, STATS_TOPIC])
    began = time.monotonic()
    # The buyers' clients stand in for the CDN or load balancer in front of the proxy: each
    # sends its buyer's own address in X-Forwarded-For, and nginx appends the clients' own
    # (127.0.0.1). With two trusted proxies, every per-address rule (the anonymous first
    # command's rate, new buyers and seats held per address) reads the buyer's address, as
    # it would read 20,000 real buyers' behind a real front end.
    stack = Stack({"SEATS_TRUSTED_PROXIES": "2"}, name="onsale")
    stack_ready(stack)
    print(
        f"  stack up in {time.monotonic() - began:.1f} s: proxy 127.0.0.1:{stack.port}, "
        f"web {stack.http_port}, ws {stack.ws_port}, metrics {stack.metrics_base} + 1…5, "
        f"SEATS_WEB_WORKERS={os.environ.get('SEATS_WEB_WORKERS', '2')}, "
        f"SEATS_WS_WORKERS={os.environ.get('SEATS_WS_WORKERS', '2')}",
        flush=True,
    )
    return stack


def pipeline_warm(warm) -> None:  # type: ignore[no-untyped-def]
    """A hold and its release on the warm-up event: the relay and the gateway bridge are
    flowing (its frame is on the live channel) and both projections have applied them, so
    no figure of the sale measures a consumer joining its group."""
    from apps.core.models import ProjectionCursor
    from apps.reservations import selectors, services

    began = time.monotonic()
    seat = warm.venue.seats.values_list("key", flat=True).first()
    pipeline_wait(warm.pk, seat)
    token = selectors.inventory_snapshot_get(event_id=warm.pk).state[seat][2:]
    seq = services.hold_release(token=token, holder=f"bench:{RUN}:warm").seq
    while time.monotonic() < began + 90:
        cursors = ProjectionCursor.objects.filter(event_id=warm.pk, last_seq__gte=seq)
        if cursors.filter(consumer__in=("persistence", "stats")).count() == 2:
            print(f"  pipeline warm in {time.monotonic() - began:.1f} s", flush=True)
            return
        time.sleep(0.2)
    raise RuntimeError("the projections did not apply the warm-up hold within 90 s")


# --- direct readings of the pipeline (no metrics needed) ------------------------------------


class PipelineSampler:
    """Once a second: the event's outbox length (entries not applied by every projection
    yet: seats_outbox_kept) and how many seqs the persistence and stats cursors are behind
    the inventory's seq (seats_consumer_lag in seqs, not messages), read directly."""

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        self.series: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-sampler", daemon=True)

    def start(self) -> "PipelineSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def read(self) -> dict[str, int]:
        from apps.core.models import ProjectionCursor
        from apps.core.redis import redis_client_get
        from apps.reservations.redis.keys import event_keys

        keys = event_keys(self.event_id)
        with redis_client_get().pipeline(transaction=False) as pipe:
            outbox, seq = pipe.xlen(keys.outbox).hget(keys.meta, "seq").execute()
        seq = int(seq or 0)
        cursors = dict(
            ProjectionCursor.objects.filter(event_id=self.event_id).values_list(
                "consumer", "last_seq"
            )
        )
        return {
            "seq": seq,
            "outbox": outbox,
            "persistence": seq - cursors.get("persistence", 0),
            "stats": seq - cursors.get("stats", 0),
        }

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self._stop.is_set():
                self.series.append((time.monotonic(), self.read()))
                self._stop.wait(1.0)
        finally:
            connection.close()


# --- the clients ----------------------------------------------------------------------------


def sockets_open(stack: Stack, event_id: int, args: argparse.Namespace) -> NodeCrowds | None:
    """The live maps, connected through the proxy before the sale opens."""
    if not args.sockets:
        return None
    spec = CrowdSpec(
        uri=f"ws://127.0.0.1:{stack.port}/ws/events/{event_id}/",
        origin=f"http://127.0.0.1:{stack.port}",  # the page's own origin, as a browser sends
        indices=range(0),
        ramp=args.socket_ramp,
        handshake_s=30.0,
        snapshot_s=60.0,
    )
    crowds = NodeCrowds(spec, args.sockets, max(1, min(args.socket_procs, args.sockets)))
    crowds.receive(60)
    crowds.send(time.monotonic() + 0.5)
    records = [
        r for answer in crowds.receive(args.sockets / args.socket_ramp + 120) for r in answer
    ]
    ok = sorted(snapshot - start for start, snapshot, failure in records if not failure)
    failures = Counter(failure for *_, failure in records if failure)
    print(
        f"  sockets: {len(ok):,} of {args.sockets:,} holding a snapshot (connect → snapshot "
        f"p50 {percentile(ok, 0.5) * 1000:,.0f} ms, p99 {percentile(ok, 0.99) * 1000:,.0f} ms)"
        + (f"; not connected: {dict(failures)}" if failures else ""),
        flush=True,
    )
    return crowds


class NodeBuyers:
    """The buyers' Node processes (bench/clients/buyers.mjs), in JSON lines over their stdin
    and stdout: "booted", then the start time; progress lines; one result each."""

    def __init__(self, config: dict, procs: int) -> None:
        node = shutil.which("node")
        if node is None:
            raise SystemExit("the buyers need node (bench/clients/buyers.mjs)")
        self.members = []
        for p in range(procs):
            own = config | {"first": p, "step": procs, "seed": config["seed"] * 1009 + p}
            proc = subprocess.Popen(
                [node, str(NODE_CLIENTS / "buyers.mjs"), json.dumps(own)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=nofile_raise,
            )
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=self._read, args=(proc, lines), daemon=True).start()
            self.members.append((proc, lines))
        self.progress: list[dict] = [{} for _ in self.members]

    @staticmethod
    def _read(proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(json.loads(line))
        lines.put(None)  # it exited

    def _next(self, i: int, timeout: float):  # type: ignore[no-untyped-def]
        proc, lines = self.members[i]
        message = lines.get(timeout=timeout)
        if message is None:
            raise RuntimeError(f"a buyers process exited with {proc.wait()}")
        return message

    def boot(self, timeout: float = 120.0) -> None:
        for i in range(len(self.members)):
            assert self._next(i, timeout) == "booted"

    def start(self, at: float) -> None:
        for proc, _ in self.members:
            proc.stdin.write(json.dumps(at) + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

    def results(self, timeout: float, start_at: float) -> list[dict]:
        """Every process's result; prints the progress every 10 s meanwhile."""
        deadline, shown, results = time.monotonic() + timeout, start_at, [None] * len(self.members)
        while any(r is None for r in results):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the buyers did not finish within {timeout:.0f} s")
            for i, result in enumerate(results):
                if result is None:
                    try:
                        message = self._next(i, 0.2)
                    except queue.Empty:
                        continue
                    if "progress" in message:
                        self.progress[i] = message["progress"]
                    else:
                        results[i] = message["result"]
            if time.monotonic() - shown >= 10:
                shown = time.monotonic()
                total = Counter()
                for p in self.progress:
                    total.update(p)
                print(
                    f"    t={shown - start_at:5.0f} s: {total['arrived']:,} buyers arrived, "
                    f"{total['done']:,} done, {total['in_flight']:,} requests in flight"
                    + (f", {total['waiting']:,} in the waiting room" if "waiting" in total else ""),
                    flush=True,
                )
        return results  # type: ignore[return-value]

    def stop(self) -> None:
        for proc, _ in self.members:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)


def room_open(event, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """``--room-rate``: staff turn the event's waiting room on, its sale starting now (every
    buyer queues in arrival order) and admitting ``--room-rate`` buyers a minute; the
    settings reach Redis at once (no transaction is open: room_sync's on_commit runs now).
    After the live maps connected: a socket is checked for a pass when it connects, so they
    stand in for the maps of buyers admitted earlier."""
    from apps.waitingroom import services
    from apps.waitingroom.models import WaitingRoom

    room = WaitingRoom.objects.create(
        event=event,
        enabled=True,
        sale_starts_at=datetime.now(tz=UTC),
        rate_per_minute=args.room_rate,
        pass_minutes=20,
    )
    services.room_sync(room)
    print(f"  waiting room on: {args.room_rate:,} buyers admitted a minute", flush=True)


def buyers_run(
    stack: Stack, event_id: int, args: argparse.Namespace, cpu_read: Callable[[], Counter]
) -> dict:
    """The buying phase; with the CPU ``cpu_read`` saw used during it."""
    config = {
        "base": f"http://127.0.0.1:{stack.port}",
        "event_id": event_id,
        "room": bool(args.room_rate),
        "run": RUN,
        "buyers": args.buyers,
        "ramp_s": args.ramp,
        "timeout_s": args.timeout,
        "connections": args.connections,
        "request_timeout_s": 30,
        "seed": args.seed,
        "map_every_s": args.map_every,
        "think_s": args.think,
        "retries": args.retries,
        "best_share": 0.5,
        "reserve_share": 0.7,
        "release_share": 0.2,
        "max_count": 4,
    }
    buyers = NodeBuyers(config, args.buyer_procs)
    try:
        buyers.boot()
        start_at = time.monotonic() + 1.0
        cpu_before = cpu_read()
        buyers.start(start_at)
        print(
            f"  sale open: {args.buyers:,} buyers over {args.ramp:g} s "
            f"({args.buyers / args.ramp:,.0f}/s), {args.buyer_procs} Node processes × "
            f"{args.connections} connections",
            flush=True,
        )
        results = buyers.results(args.timeout + 120, start_at)
        cpu, cpu_wall = cpu_read() - cpu_before, time.monotonic() - start_at
    finally:
        buyers.stop()
    merged: dict = {"start_at": start_at, "records": [], "reservations": [], "waited": []}
    merged["fates"] = Counter()
    for result in results:
        merged["records"] += [Record(*r) for r in result["records"]]
        merged["reservations"] += result["reservations"]
        merged["waited"] += result["waited"]
        merged["fates"].update(result["fates"])
    merged["ended"] = {r["ended"] for r in results}
    merged["fates"]["never arrived (deadline)"] = args.buyers - sum(r["arrived"] for r in results)
    merged["fates"] = +merged["fates"]  # without the zero
    cpu["buyers (Node)"] = sum(r["cpu_s"] for r in results)
    merged["cpu"], merged["cpu_wall"] = cpu, cpu_wall
    merged["loop_p99_ms"] = max(r["loop_delay_p99_ms"] for r in results)
    merged["loop_max_ms"] = max(r["loop_delay_max_ms"] for r in results)
    merged["maps"] = sum(r["maps"] for r in results)
    merged["room_reads"] = sum(r["room_reads"] for r in results)
    return merged


# --- after the buying phase -----------------------------------------------------------------


def holds_end_wait(event_id: int, timeout: float) -> tuple[bool, str]:
    """Until the event has no hold left: the sweep ends those the buyers walked away from."""
    from apps.core.redis import redis_client_get
    from apps.reservations.redis.keys import event_keys

    redis, began = redis_client_get(), time.monotonic()
    while True:
        left = redis.hlen(event_keys(event_id).holds)
        if left == 0:
            return True, f"all ended {time.monotonic() - began:.0f} s after the buying phase"
        if time.monotonic() - began > timeout:
            return False, f"{left} holds still in Redis {timeout:.0f} s after the buying phase"
        time.sleep(0.5)


def drain_wait(sampler: PipelineSampler, scraper: MetricsScraper, timeout: float) -> dict:
    """Until the outbox is empty and both cursors are at the inventory's seq, and then until
    the metrics say lag 0 and backlog 0 (where they exist); what was seen last."""
    began = time.monotonic()
    while True:
        direct = sampler.read()
        direct_ok = direct["outbox"] == 0 and direct["persistence"] == direct["stats"] == 0
        scraped = scraper.scrape()
        lag = [
            v
            for s in scraped.values()
            for v in samples_sum(s, "seats_consumer_lag", "consumer").values()
        ]
        backlog = [
            v for s in scraped.values() for v in samples_sum(s, "seats_outbox_backlog").values()
        ]
        metrics_ok = None if not (lag or backlog) else not any(lag) and not any(backlog)
        if direct_ok and metrics_ok is not False:
            break
        if time.monotonic() - began > timeout:
            break
        time.sleep(0.5)
    return {
        "direct": direct,
        "direct_ok": direct_ok,
        "metrics_ok": metrics_ok,
        "lag": lag,
        "backlog": backlog,
        "seconds": time.monotonic() - began,
    }


def occurred_read(event_id: int, timeout: float = 120.0) -> dict[int, float]:
    """seq → occurred_at (Unix seconds) of every seat event of the event, read back from
    this run's seat topic (the frames' items carry no time)."""
    from django.conf import settings
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    occurred: dict[int, float] = {}
    try:
        partitions = [
            TopicPartition(SEAT_TOPIC, p) for p in consumer.partitions_for_topic(SEAT_TOPIC)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                break
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope["event_id"] == event_id:
                        at = datetime.fromisoformat(envelope["occurred_at"]).timestamp()
                        occurred[envelope["seq"]] = at
    finally:
        consumer.close()
    return occurred


def socket_delays(crowds: NodeCrowds, target: int, occurred: dict[int, float]) -> dict:
    """The sockets' summaries: each change's receipt against its occurred_at, passed to the
    clients on their own clock (CLOCK_MONOTONIC)."""
    offset = time.time() - time.monotonic()
    first = min(occurred, default=1)
    table = [None] * (max(occurred, default=0) - first + 1)
    for seq, at in occurred.items():
        table[seq - first] = at - offset
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump({"first": first, "occurred": table}, file)
    try:
        crowds.send([target, SOCKETS_GRACE_S, file.name])
        answers = crowds.receive(300)
    finally:
        os.unlink(file.name)
    merged: dict = {"delays": Counter(), "failures": Counter(), "dropped": []}
    for answer in answers:
        merged["delays"].update({int(ms): n for ms, n in answer.pop("delays_ms").items()})
        merged["failures"].update(answer.pop("failures"))
        merged["dropped"] += answer.pop("dropped")
        merged["stall"] = max(merged.get("stall", [0, 0]), answer.pop("stall"))
        for key in ("loop_delay_p99_ms", "loop_delay_max_ms"):
            merged[key] = max(merged.get(key, 0.0), answer.pop(key))
        for key, value in answer.items():
            merged[key] = merged.get(key, 0) + value
    return merged


# --- figures --------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "–" if value != value else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def sale_print(buyers: dict, seats: int) -> float:
    """How far the sale got; returns the buying phase's length (start → last answer)."""
    start = buyers["start_at"]
    span = max((r.end for r in buyers["records"]), default=start) - start
    sold_at = sorted(
        (r.end - start, r.seats)
        for r in buyers["records"]
        if r.kind == "reserve" and r.outcome == "granted"
    )
    milestones, sold = {}, 0
    for at, n in sold_at:
        sold += n
        for share in (0.5, 0.9, 1.0):
            if share not in milestones and sold >= share * seats:
                milestones[share] = at
    shown = ", ".join(f"{share:.0%} at {at:.1f} s" for share, at in milestones.items())
    verdict = (
        f"SOLD OUT in {milestones[1.0]:.1f} s"
        if 1.0 in milestones
        else f"not sold out: {sold:,} of {seats:,} seats sold ({sold / seats:.1%}, as answered "
        f"to the buyers)"
    )
    print(
        f"\nsale: {verdict}; {shown or 'under half sold'}; buying phase {span:.1f} s "
        f"({', '.join(sorted(buyers['ended']))})"
    )
    return span


def commands_print(buyers: dict, span: float) -> None:
    by_kind: dict[str, list] = {kind: [] for kind in KINDS}
    for record in buyers["records"]:
        by_kind[record.kind].append(record)
    posts = sum(len(by_kind[k]) for k in COMMANDS)
    print(
        f"commands: {posts:,} in {span:.1f} s = {posts / span if span else 0:,.0f}/s "
        f"(plus {len(by_kind['page']):,} page and {len(by_kind['map']):,} seat map GETs); "
        f"times of answered requests (those aborted at the deadline left out)"
    )
    print(
        "\n| request | count | per s | p50 ms | p99 ms | max ms | p50 / p99 ms on the wire "
        "| outcomes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind, records in by_kind.items():
        if not records:
            continue
        answered = [r for r in records if r.outcome != "aborted"]  # by the deadline
        times = sorted(r.ms for r in answered)
        wire = sorted(r.ms - r.queued_ms for r in answered)
        outcomes = Counter(r.outcome for r in records).most_common()
        print(
            f"| {kind} | {len(records):,} | {len(records) / span if span else 0:,.1f} | "
            f"{ms(percentile(times, 0.5))} | {ms(percentile(times, 0.99))} | "
            f"{ms(times[-1] if times else float('nan'))} | "
            f"{ms(percentile(wire, 0.5))} / {ms(percentile(wire, 0.99))} | "
            f"{', '.join(f'{o} {n:,}' for o, n in outcomes)} |"
        )
    fates = ", ".join(f"{fate} {n:,}" for fate, n in buyers["fates"].most_common())
    print(f"\nbuyers' visits: {fates}")


def room_print(buyers: dict, args: argparse.Namespace) -> None:
    """How long admitted buyers waited in the room, and the admission rate they saw."""
    if not args.room_rate:
        return
    waited = sorted(buyers["waited"])
    passes = sorted(r.end for r in buyers["records"] if r.kind == "pass" and r.outcome == "granted")
    rate = (
        (len(passes) - 1) / (passes[-1] - passes[0]) * 60
        if len(passes) > 1 and passes[-1] > passes[0]
        else float("nan")
    )
    print(
        f"waiting room: {len(waited):,} buyers admitted and holding a pass; waited (join → "
        f"pass) p50 {percentile(waited, 0.5):.1f} s, p99 {percentile(waited, 0.99):.1f} s, "
        f"max {waited[-1] if waited else float('nan'):.1f} s; passes taken at "
        f"{rate:,.0f}/min (set {args.room_rate:,}/min); the room read "
        f"{buyers['room_reads']:,} times (GET …/room, once a second per buyer process, "
        f"standing in for the room's broadcast frames)"
    )


def timeline_print(
    buyers: dict,
    args: argparse.Namespace,
    scraper: MetricsScraper,
    sampler: PipelineSampler,
    span: float,
) -> None:
    """One row per --timeline seconds: arrivals, commands answered and their p99, seats
    sold, and the largest backlog and lag seen (scraped; direct in brackets)."""
    if args.timeline <= 0:
        return
    start, step = buyers["start_at"], args.timeline
    windows = int(span // step) + 1
    answered: list[list[float]] = [[] for _ in range(windows)]
    conflicts, sold = [0] * windows, [0] * windows
    for r in buyers["records"]:
        w = min(windows - 1, max(0, int((r.end - start) // step)))
        if r.kind in COMMANDS and r.outcome != "aborted":
            answered[w].append(r.ms)
            conflicts[w] += r.outcome == "seats_unavailable"
        if r.kind == "reserve" and r.outcome == "granted":
            sold[w] += r.seats
    print(
        "\n| t (s) | buyers arrived | commands/s | p99 ms | conflicts | seats sold | "
        "outbox backlog max (kept) | consumer lag max |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total_sold = 0
    for w in range(windows):
        low, high = start + w * step, start + (w + 1) * step
        arrived = min(args.buyers, int(min(high - start, args.ramp) * args.buyers / args.ramp))
        total_sold += sold[w]
        backlog, lag = window_max(scraper, sampler, low, high)
        times = sorted(answered[w])
        print(
            f"| {w * step:g}–{(w + 1) * step:g} | {arrived:,} | {len(times) / step:,.0f} | "
            f"{ms(percentile(times, 0.99))} | {conflicts[w]:,} | {total_sold:,} | {backlog} | "
            f"{lag} |"
        )


def window_max(scraper: MetricsScraper, sampler: PipelineSampler, low: float, high: float):  # type: ignore[no-untyped-def]
    scraped_backlog, scraped_lag = (
        gauge_max(scraper, "seats_outbox_backlog", None, low, high),
        gauge_max(scraper, "seats_consumer_lag", "consumer", low, high),
    )
    direct = [d for t, d in sampler.series if low <= t < high]
    outbox = max((d["outbox"] for d in direct), default=None)
    behind = max((max(d["persistence"], d["stats"]) for d in direct), default=None)
    backlog = f"{fmt(scraped_backlog.get(''))} ({fmt(outbox)})"
    lag = f"{fmt(max(scraped_lag.values(), default=None))} ({fmt(behind)})"
    return backlog, lag


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def gauge_max(
    scraper: MetricsScraper, name: str, by: str | None, low: float = 0.0, high: float = float("inf")
) -> dict[str, float]:
    """The largest value a gauge (summed per ``by`` label over every endpoint, e.g. a
    consumer's partitions) had in one scrape between ``low`` and ``high``; {} if never seen."""
    largest: dict[str, float] = {}
    for t, found in scraper.series:
        if not low <= t < high:
            continue
        round_sum: dict[str, float] = {}
        for samples in found.values():
            for key, value in samples_sum(samples, name, by).items():
                round_sum[key] = round_sum.get(key, 0.0) + value
        for key, value in round_sum.items():
            largest[key] = max(largest.get(key, value), value)
    return largest


def sockets_print(connected: int, summary: dict | None, start_at: float) -> None:
    if summary is None:
        print("\nsockets: none (--sockets 0)")
        return
    delays = summary["delays"]
    ordered = sorted(delays)
    total = sum(delays.values())

    def quantile(q: float) -> float:
        seen = 0
        for value in ordered:
            seen += delays[value]
            if seen > q * total:
                return value
        return float("nan")

    failures = ", ".join(f"{k} {n}" for k, n in summary["failures"].items()) or "none"
    print(
        f"\nsockets ({connected:,} connected): delay occurred_at → receipt p50 "
        f"{ms(quantile(0.5))} ms, p99 {ms(quantile(0.99))} ms, max "
        f"{ms(ordered[-1] if ordered else float('nan'))} ms over {total:,} deliveries; "
        f"{summary['frames']:,} frames; missing {SOCKETS_GRACE_S:.0f} s after the drain "
        f"{summary['lost']:,}, healed by resync "
        f"{summary['healed']:,} ({summary['resyncs']:,} resyncs); no occurred_at "
        f"{summary['unknown']:,}; closed early or not connected: {failures}; the clients' "
        f"event loop delay p99 {summary['loop_delay_p99_ms']:.0f} ms, max "
        f"{summary['loop_delay_max_ms']:.0f} ms (the longest, {summary['stall'][0]:.1f} s, "
        f"ended at t={summary['stall'][1] - start_at:.0f} s)"
    )
    if summary["dropped"]:
        when = sorted(at - start_at for at, _ in summary["dropped"])
        codes = Counter(code for _, code in summary["dropped"]).most_common()
        print(
            f"  {len(when):,} sockets closed by the other end during the sale, from t="
            f"{when[0]:.0f} s to t={when[-1]:.0f} s (median {percentile(when, 0.5):.0f} s); "
            f"close codes: {', '.join(f'{code} × {n}' for code, n in codes)}"
        )


def pipeline_print(scraper: MetricsScraper, sampler: PipelineSampler) -> None:
    lag = gauge_max(scraper, "seats_consumer_lag", "consumer")
    backlog = gauge_max(scraper, "seats_outbox_backlog", None)
    age = gauge_max(scraper, "seats_outbox_oldest_age_seconds", None)
    direct = [d for _, d in sampler.series]

    def direct_max(key: str) -> str:
        return fmt(max((d[key] for d in direct), default=None))

    print("\npipeline, largest seen (scraped every second):")
    lags = ", ".join(f"{c} {v:,.0f}" for c, v in sorted(lag.items())) or "n/a"
    print(f"  consumer lag (seats_consumer_lag, messages): {lags}")
    oldest = "n/a" if not age else f"{max(age.values()):.1f} s"
    print(
        f"  outbox backlog (seats_outbox_backlog, unpublished): {fmt(backlog.get(''))}; "
        f"oldest kept entry (seats_outbox_oldest_age_seconds): {oldest}"
    )
    print(
        f"  read directly: outbox length (kept until applied) {direct_max('outbox')}; seqs "
        "behind the inventory: "
        f"persistence {direct_max('persistence')}, stats {direct_max('stats')}"
    )


def served_print(scraper: MetricsScraper) -> None:
    """What the platform counted itself, from each endpoint's last scrape."""
    last = scraper.last

    def total(endpoint: str, name: str) -> str:
        return fmt(samples_sum(last.get(endpoint), name).get(""))

    commands = samples_sum(last.get("web"), "seats_commands_total", "outcome")
    counted = ", ".join(f"{o} {n:,.0f}" for o, n in sorted(commands.items(), key=lambda x: -x[1]))
    print(
        f"\nthe platform's own counts: commands (seats_commands_total) {counted or 'n/a'}; "
        f"holds expired by the sweep {total('celery', 'seats_holds_expired_total')}; ws "
        f"frames sent {total('ws', 'seats_ws_frames_sent_total')}, dropped "
        f"{total('ws', 'seats_ws_frames_dropped_total')}, resyncs "
        f"{total('ws', 'seats_ws_resyncs_total')}; endpoints that answered: "
        f"{', '.join(sorted(last)) or 'none'}"
    )


def cpu_seconds(pid: int) -> float:
    """A live process's CPU time so far (user + system; /proc, Linux); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Which Procfile process a command line under honcho belongs to (first match).
PROCESS_OF = (
    ("consume_kafka persistence", "persistence"), ("consume_kafka stats", "stats"),
    ("consume_kafka gateway", "gateway"), ("relay_outbox", "relay"), ("celery", "celery"),
    ("granian", "web"), ("daphne", "ws"), ("ws_workers.py", "ws"), ("nginx", "proxy"),
    ("proxy.py", "proxy"), ("honcho", "honcho"),
)  # fmt: skip


def stack_cpu(root: int) -> Counter:
    """CPU seconds so far of every live process under the stack's honcho, by Procfile name."""
    total: Counter = Counter()
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # it exited meanwhile
        name = next((n for part, n in PROCESS_OF if part in command), "other")
        total[name] += cpu_seconds(pid)
    return total


def cpu_print(used: Counter, wall: float) -> None:
    """CPU each part used in the buying phase; 100 % is one core busy for all of it."""
    parts = ", ".join(f"{name} {s:,.1f} s ({s / wall:.0%})" for name, s in used.most_common())
    print(
        f"\nCPU in the buying phase ({wall:.0f} s; 100 % = one core throughout): {parts}; "
        f"the machine's {os.cpu_count()} cores also run Redis, Postgres, the broker and "
        f"anything else on it"
    )


def cpu_now(stack: Stack, crowds: NodeCrowds | None) -> Counter:
    used = stack_cpu(stack.proc.pid)
    for proc, _, _ in crowds.members if crowds else ():
        used["sockets (Node)"] += cpu_seconds(proc.pid)
    return used


def load_print(buyers: dict) -> None:
    """Whether the buyers' clocks can be trusted: a busy event loop delays every timer and
    every reading of a response."""
    print(
        f"\nload generator: buyers' event loop delay p99 {buyers['loop_p99_ms']:.0f} ms, max "
        f"{buyers['loop_max_ms']:.0f} ms; {buyers['maps']} seat maps fetched"
    )


# --- checks ---------------------------------------------------------------------------------


def checks_run(
    event_id: int, stack: Stack, buyers: dict, holds: tuple[bool, str], drained: dict
) -> list[tuple[str, bool | None, str]]:
    """(check, passed (None: could not be checked), detail)."""
    from apps.reservations import selectors

    snapshot = selectors.inventory_snapshot_get(event_id=event_id)
    direct = drained["direct"]
    checks = [
        (
            "pipeline drained (outbox empty, cursors at the seq)",
            drained["direct_ok"],
            f"seq {direct['seq']:,}, outbox {direct['outbox']}, persistence "
            f"{direct['persistence']} and stats {direct['stats']} behind, after "
            f"{drained['seconds']:.0f} s",
        ),
        (
            "metrics say drained (lag 0, backlog 0)",
            drained["metrics_ok"],
            "n/a: no seats_consumer_lag or seats_outbox_backlog served"
            if drained["metrics_ok"] is None
            else f"lag {drained['lag']}, backlog {drained['backlog']}",
        ),
        ("every hold ended (sweep)", holds[0], holds[1]),
        reconcile_check(event_id),
        postgres_double_check(event_id),
        redis_double_check(event_id, snapshot),
        reservations_check(event_id, snapshot),
        stats_check(event_id, snapshot, stack),
        buyers_check(buyers, snapshot),
    ]
    return checks


def reconcile_check(event_id: int) -> tuple[str, bool, str]:
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile", str(event_id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    detail = lines[-1] if done.returncode == 0 else "; ".join(lines[:3] + lines[-1:])
    return "manage.py reconcile clean", done.returncode == 0, detail


def postgres_double_check(event_id: int) -> tuple[str, bool, str]:
    from django.db.models import Count

    from apps.persistence.models import ReservedSeat

    doubles = list(
        ReservedSeat.objects.filter(event_id=event_id, active=True)
        .values("seat_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("seat_key", flat=True)[:5]
    )
    return (
        "no seat sold twice (Postgres: active ReservedSeat rows)",
        not doubles,
        f"seats in two active rows: {doubles}" if doubles else "0 seats in two active rows",
    )


def redis_double_check(event_id: int, snapshot) -> tuple[str, bool, str]:  # type: ignore[no-untyped-def]
    """Every seat in at most one live reservation of the inventory, and the seat states
    say the same."""
    from apps.core.redis import redis_client_get
    from apps.reservations.redis.keys import event_keys

    raw = redis_client_get().hgetall(event_keys(event_id).reservations)
    owner, problems = {}, []
    for rid, value in raw.items():
        reservation = json.loads(value)
        if reservation["status"] == "cancelled":
            continue
        for seat in reservation["seats"]:
            if seat in owner:
                problems.append(f"{seat} in {owner[seat]} and {rid}")
            owner[seat] = rid
            if snapshot.state.get(seat) != f"r:{rid}":
                problems.append(f"{seat} of {rid} is {snapshot.state.get(seat)!r}")
    for seat, value in snapshot.state.items():
        if value.startswith("r:") and owner.get(seat) != value[2:]:
            problems.append(f"{seat} is {value!r}, which does not list it")
    return (
        "no seat sold twice (Redis: reservations)",
        not problems,
        "; ".join(problems[:3]) or f"{len(owner):,} seats in {len(raw):,} reservations, each once",
    )


def reservations_check(event_id: int, snapshot) -> tuple[str, bool, str]:  # type: ignore[no-untyped-def]
    from apps.persistence.models import Reservation, ReservedSeat

    in_redis = {s: v[2:] for s, v in snapshot.state.items() if v.startswith("r:")}
    in_db = {
        seat: str(rid)
        for seat, rid in ReservedSeat.objects.filter(event_id=event_id, active=True).values_list(
            "seat_key", "reservation_id"
        )
    }
    rows = Reservation.objects.filter(event_id=event_id, status="reserved").count()
    differ = sorted(s for s in in_redis.keys() | in_db.keys() if in_redis.get(s) != in_db.get(s))
    ok = not differ and rows == len(set(in_redis.values()))
    return (
        "reservations: Postgres = Redis (snapshot)",
        ok,
        f"{len(in_db):,} seats in {rows:,} reservations in Postgres, {len(in_redis):,} "
        f"reserved in Redis in {len(set(in_redis.values())):,}"
        + (f"; differ: {differ[:3]} ({len(differ)})" if differ else ""),
    )


def stats_check(event_id: int, snapshot, stack: Stack) -> tuple[str, bool, str]:  # type: ignore[no-untyped-def]
    """The stats projection and the stats API against the snapshot's counts and seq."""
    from apps.reservations.models import Event
    from apps.stats.models import EventStats

    total = Event.objects.get(pk=event_id).venue.seats.count()
    states = Counter(
        {"h": "held", "r": "reserved", "b": "blocked"}[v[0]] for v in snapshot.state.values()
    )
    expected = {
        "total": total,
        "free": total - sum(states.values()),
        "held": states["held"],
        "reserved": states["reserved"],
        "blocked": states["blocked"],
        "seq": snapshot.seq,
    }
    row = EventStats.objects.filter(event_id=event_id).first()
    projection = (
        None
        if row is None
        else {
            "total": row.total,
            "free": row.free,
            "held": row.held,
            "reserved": row.reserved,
            "blocked": row.blocked,
            "seq": row.last_seq,
        }
    )
    api = stats_api_read(stack, event_id)
    differ = [
        f"{where} {k} {got.get(k) if got else None} ≠ {v}"
        for where, got in (("projection", projection), ("API", api))
        for k, v in expected.items()
        if not got or got.get(k) != v
    ]
    shown = ", ".join(f"{k} {v:,}" for k, v in expected.items())
    return "stats = snapshot (projection and API)", not differ, "; ".join(differ[:4]) or shown


def stats_api_read(stack: Stack, event_id: int) -> dict | None:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}/api/stats/event/{event_id}",
        headers={"Accept": "application/json"},
    )
    try:
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def buyers_check(buyers: dict, snapshot) -> tuple[str, bool, str]:  # type: ignore[no-untyped-def]
    """Every reservation granted to a buyer is in Redis with its seats; Redis has no other,
    but for reserves whose answer never came (a timeout, the deadline)."""
    granted = {rid: sorted(seats) for rid, seats in buyers["reservations"]}
    in_redis: dict[str, list[str]] = {}
    for seat, value in snapshot.state.items():
        if value.startswith("r:"):
            in_redis.setdefault(value[2:], []).append(seat)
    missing = [rid for rid, seats in granted.items() if sorted(in_redis.get(rid, [])) != seats]
    extra = len(in_redis.keys() - granted.keys())
    unanswered = sum(
        1 for r in buyers["records"] if r.kind == "reserve" and r.outcome in UNANSWERED
    )
    ok = not missing and extra <= unanswered
    return (
        "buyers' granted reservations = Redis",
        ok,
        f"{len(granted):,} granted, {len(in_redis):,} in Redis; {len(missing)} granted but "
        f"not so in Redis{f' (e.g. {missing[0]})' if missing else ''}; {extra} not granted "
        f"to a buyer ({unanswered} reserves unanswered)",
    )


def checks_print(checks: list[tuple[str, bool | None, str]]) -> bool:
    print("\n| check | result | detail |")
    print("|---|---|---|")
    for name, passed, detail in checks:
        result = "n/a" if passed is None else "pass" if passed else "FAIL"
        print(f"| {name} | {result} | {detail} |")
    return all(passed is not False for _, passed, _ in checks)


# --- main -----------------------------------------------------------------------------------


def args_parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--sockets", type=int, default=1_000, help="live maps over WebSockets")
    parser.add_argument(
        "--ramp", type=float, default=120.0, help="seconds over which buyers arrive (> 0)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="bound of the buying phase, s")
    parser.add_argument(
        "--seats", type=int, default=50_000, help="50 sections × 40 rows × seats/2,000"
    )
    parser.add_argument("--hold-ttl", type=int, default=30, help="the event's hold ttl, s (≥ 10)")
    parser.add_argument(
        "--think", type=float, default=1.0, help="a buyer's pause before each step, s"
    )
    parser.add_argument("--retries", type=int, default=3, help="after a conflict, per buyer")
    parser.add_argument("--map-every", type=float, default=5.0, help="seat map refresh, s")
    parser.add_argument("--buyer-procs", type=int, default=2, help="Node processes of buyers")
    parser.add_argument(
        "--connections", type=int, default=128, help="keep-alive, per buyer process"
    )
    parser.add_argument("--socket-procs", type=int, default=2, help="Node processes of sockets")
    parser.add_argument("--socket-ramp", type=float, default=250.0, help="sockets opened per s")
    parser.add_argument("--timeline", type=float, default=10.0, help="s per row; 0: none")
    parser.add_argument(
        "--room-rate",
        type=int,
        default=0,
        help="a waiting room admitting this many buyers a minute; 0: none",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.ramp <= 0 or args.hold_ttl < 10 or args.buyers < 1 or args.room_rate < 0:
        parser.error(
            "--ramp must be > 0, --hold-ttl ≥ 10 (the model's minimum), --buyers ≥ 1, "
            "--room-rate ≥ 0"
        )
    return args


def main() -> int:
    args = args_parse()
    bench_env_setup(
        defaults={"DJANGO_DEBUG": "false"},
        KAFKA_TOPIC_SEAT_EVENTS=SEAT_TOPIC,
        KAFKA_TOPIC_STATS_EVENTS=STATS_TOPIC,
    )
    if args.sockets and not (NODE_CLIENTS / "node_modules" / "ws").is_dir():
        raise SystemExit("the sockets need `npm ci` in bench/clients (or --sockets 0)")
    print(
        f"bench/onsale.py run {RUN}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.buyers:,} buyers over {args.ramp:g} s, "
        f"{args.sockets:,} sockets, timeout {args.timeout:g} s; database {BENCH_DB}, "
        f"prefix {PREFIX}, topics {SEAT_TOPIC}",
        flush=True,
    )
    nofile_raise()  # inherited by the stack: the proxy and ws hold every socket
    began = time.monotonic()
    db_created, stack, crowds, scraper, sampler = False, None, None, None, None
    failed, sockets_failed = True, False  # either keeps the stack's log
    try:
        bench_database_create()
        db_created = True
        event, seats, warm = events_create(args)
        stack = stack_start()
        pipeline_warm(warm)
        scraper = MetricsScraper(stack.metrics_urls(), GAUGES).start()
        sampler = PipelineSampler(event.pk).start()
        crowds = sockets_open(stack, event.pk, args)
        if args.room_rate:
            room_open(event, args)
        connected = args.sockets  # refined by the sockets' own count below
        buyers = buyers_run(stack, event.pk, args, lambda: cpu_now(stack, crowds))
        print(
            "  buying phase over; waiting for the holds to end and the pipeline to drain",
            flush=True,
        )
        holds = holds_end_wait(event.pk, args.hold_ttl + 60)
        drained = drain_wait(sampler, scraper, 120)
        summary = None
        if crowds is not None:
            summary = socket_delays(crowds, drained["direct"]["seq"], occurred_read(event.pk))
            connected = args.sockets - sum(
                summary["failures"][k] for k in ("refused", "failed", "timeout")
            )
            sockets_failed = bool(summary["failures"])
        sampler.stop()
        scraper.stop()
        span = sale_print(buyers, seats)
        commands_print(buyers, span)
        room_print(buyers, args)
        timeline_print(buyers, args, scraper, sampler, span)
        sockets_print(connected, summary, buyers["start_at"])
        pipeline_print(scraper, sampler)
        served_print(scraper)
        load_print(buyers)
        cpu_print(buyers["cpu"], buyers["cpu_wall"])
        ok = checks_print(checks_run(event.pk, stack, buyers, holds, drained))
        print(f"\nwhole run {time.monotonic() - began:.0f} s")
        failed = not ok
        return 0 if ok else 1
    finally:
        for part in (sampler, scraper):
            if part is not None:
                part.stop()
        if crowds is not None:
            crowds.stop()
        if stack is not None:
            keep = failed or sockets_failed or os.environ.get("BENCH_KEEP_LOG") is not None
            stack.stop(keep_log=keep)
        print("cleanup: " + bench_cleanup(database=db_created, groups=stack is not None))


if __name__ == "__main__":
    sys.exit(main())
