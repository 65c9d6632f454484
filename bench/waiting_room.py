"""Waiting room: 50,000 buyers queue within 10 s, and are admitted at the set rate.

    (cd bench/clients && npm ci)   # once: the Node socket clients
    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/waiting_room.py

    … bench/waiting_room.py --buyers 3000 --sockets 20 --admit-seconds 10   # a small run

The issue's "done when": a bench enqueues 50,000 buyers within 10 s and admits them at a set
rate, and prints the join latency p99, the admission rate achieved against the one set
(within 5 %) and the delay of position updates to a sample of open sockets. In order:

1. Without HTTP (``--direct-buyers``, default as many as ``--buyers``; 0 skips it): the
   room's own capacity, on an event of its own, before any server runs. ``--direct-procs``
   processes (default 2, the cores) call ``services.room_join`` as the web processes do,
   first before the sale's start (early arrivals: a random lot each), then after it; in
   between, the start's draw of all those early arrivals is timed (one script, during which
   Redis answers nothing else); then the join script alone, pipelined from one client (the
   Redis ceiling); last, the whole join request through Django in-process (its test Client:
   middleware, session, throttle, DRF, the view; no server, proxy or network), at most
   10,000 of them. What the HTTP path reaches below, against these, says where the
   bottleneck is.
2. The platform as `make run` starts it, under honcho (support.Stack): proxy (nginx), web
   (granian), ws (daphne workers) and celery with beat, whose ``rooms-advance`` task is the
   admission tick. No Kafka pipeline: nothing here is on it (room frames go through Redis
   Pub/Sub). SEATS_WEB_WORKERS and SEATS_WEB_THREADS (default 2 and 1) in the environment
   size the web tier, as for `make run`. An event on sale with a waiting room of ``--rate``
   admissions a minute (default 3,000).
3. ``--sockets`` waiting buyers (default 200; bench/clients/room_sockets.mjs): each joins
   over HTTP (a new session, its cookie kept) and opens the event's socket with that
   cookie; the socket gets the buyer's own ``room`` frame, then the room's broadcasts.
   Our own subscriber on the room's channel (``store.room_channel``) timestamps every
   frame the tick PUBLISHes; each socket's receipt of the same frame (same ``serving`` and
   ``waiting``) gives the position-update delay. Both clocks are CLOCK_MONOTONIC.
4. The sale's start is set ``--early-seconds`` (default 5) ahead, and ``wrk`` (Debian's)
   sends ``POST /api/events/{id}/room`` without a cookie, so every request is a new buyer,
   each from an address of its own (X-Forwarded-For; the stack trusts the proxy in front,
   so the per-address limits on new sessions and places stay on and see one buyer per
   address), on ``--connections`` connections, until ``--buyers`` joins (default 50,000)
   have been answered 200 or ``--join-seconds`` (default 10) have passed. The first
   ``--early-seconds`` are early arrivals, drawn at the start; the rest queue behind them.
   Redis' count of places is read every 50 ms (when the target was reached), and the
   status API's figures confirm it after.
5. Admissions from the start on, for ``--admit-seconds`` (default 30): ``serving`` at each
   tick, from the room's own log (the time each value was reached, written by the tick
   script) and from our subscriber; achieved admissions a minute against the set rate.

Printed: a table of every figure (joins/s, join latency p50/p99/max, whether 50,000 joined
within 10 s over HTTP, and plainly how many did if not; the room's capacity without HTTP;
the draw; the admission rate set and achieved, and the deviation; the ticks' spacing; the
position-update delay p50/p99/max, during the joins and after, and how long early
arrivals' sockets waited for their ticket after the draw; the CPU each process used during
the joins) and the exact command line.

Everything runs on one 2-core machine: wrk, nginx, the web and ws processes, Celery,
Redis and the Node clients share its cores (and whatever else runs on it: the table shows
the machine's busy CPU during the joins), so the figures are an upper bound on latency, not
a capacity plan. Prints figures; asserts none (README, Benchmarks). A throwaway database and
Redis keys under a random ``seats-bench-…`` prefix (this run's Celery queues included) are
deleted at the end, and every process started is stopped; ``BENCH_KEEP_LOG=1`` keeps the
stack's log.
"""

import argparse
import json
import math
import multiprocessing
import os
import platform
import queue
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from support import (
    BENCH_DB,
    PREFIX,
    RUN,
    Stack,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_event_create,
    percentile,
    redis_cleanup,
)
from wrkload import WRK_REPORT_LUA, stack_ready, warm_up, wrk_path

NODE_CLIENTS = Path(__file__).resolve().parent / "clients"
STACK_PROCESSES = ("proxy", "web", "ws", "celery")
# The second octet of the sample's addresses (room_sockets.mjs): apart from wrk's.
SOCKET_ADDRESSES = 250
# At most this many joins through the Django view in-process (part 1).
VIEW_JOINS = 10_000
# nginx's worker_connections in scripts/proxy.py (one worker): a proxied connection, socket
# or request, takes two (the client's and the upstream's).
PROXY_CONNECTIONS = 4096

# Every request a new buyer: no Cookie, so the web process makes a session (and counts it
# against the address), then the join script gives it a place. Each thread sends from
# addresses of its own (10.<16 × thread + n / 65,536>.…), counts statuses, and stops once
# it has its share of 200s (wrk.thread:stop), so no more than --buyers are enqueued.
# done() prints one JSON line for the bench to read.
WRK_JOIN_LUA = r"""
function init(args)
  path, quota = args[1], tonumber(args[2])
  statuses, n, ok = {}, 0, 0
end
function request()
  n = n + 1
  local addr = string.format("10.%d.%d.%d", id * 16 + math.floor(n / 65536) % 16,
    math.floor(n / 256) % 256, n % 256)
  return wrk.format("POST", path, {["Accept"] = "application/json",
    ["X-Forwarded-For"] = addr}, "")
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    ok = ok + 1
    if ok >= quota then wrk.thread:stop() end
  end
end
"""


def args_parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buyers", type=int, default=50_000, help="joins over HTTP")
    parser.add_argument("--join-seconds", type=float, default=10.0, help="at most, for them")
    parser.add_argument("--rate", type=int, default=3000, help="admissions per minute")
    parser.add_argument(
        "--early-seconds", type=float, default=5.0,
        help="the sale starts this long after the joins begin (0: already open)",
    )  # fmt: skip
    parser.add_argument("--admit-seconds", type=float, default=30.0, help="measured from the start")
    parser.add_argument("--sockets", type=int, default=200, help="waiting buyers' sockets")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--direct-buyers", type=int, default=None,
        help="joins per phase without HTTP (default: --buyers; 0: skip that part)",
    )  # fmt: skip
    parser.add_argument("--direct-procs", type=int, default=2, help="processes calling room_join")
    args = parser.parse_args()
    if args.direct_buyers is None:
        args.direct_buyers = args.buyers
    return args


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def spread(values: list[float]) -> str:
    """p50 / p99 / max of ``values`` (seconds), or n/a."""
    if not values:
        return "n/a"
    values = sorted(values)
    return (
        f"p50 {ms(percentile(values, 0.5))}, p99 {ms(percentile(values, 0.99))}, "
        f"max {ms(values[-1])} ({len(values):,})"
    )


# --- the event and its room ---------------------------------------------------------------


def room_event_create(seats: int, *, rate: int, starts_in_s: float):  # type: ignore[no-untyped-def]
    """An event on sale (``seats`` seats: bench_event_create names its venue by the run and
    the size, which is unique, so each event of a run needs a size of its own) with a
    waiting room on, starting in ``starts_in_s``; its settings put into Redis at once (no
    transaction is open, so room_sync's on_commit runs now)."""
    from apps.waitingroom import services
    from apps.waitingroom.models import WaitingRoom

    event = bench_event_create(seats=seats, sections=1, rows=2, hold_ttl_s=600)
    room = WaitingRoom.objects.create(
        event=event,
        enabled=True,
        sale_starts_at=datetime.now(tz=UTC) + timedelta(seconds=starts_in_s),
        rate_per_minute=rate,
        pass_minutes=20,
    )
    services.room_sync(room)
    return room


def room_start_in(room, seconds: float) -> int:  # type: ignore[no-untyped-def]
    """Staff move the sale's start to ``seconds`` from now (room_update: Postgres, then
    Redis); returns it in ms since the epoch, the room's clock (inventory.clock_ms)."""
    from apps.waitingroom.services import room_update

    starts_at = datetime.now(tz=UTC) + timedelta(seconds=seconds)
    room_update(room, sale_starts_at=starts_at)
    return int(starts_at.timestamp() * 1000)


def room_hash(event_id: int) -> dict[str, str]:
    from apps.core.redis import redis_client_get
    from apps.waitingroom import store

    return redis_client_get().hgetall(store.room_keys(event_id)[0])


def places_count(event_id: int) -> int:
    """Buyers with a place in the room: the places hash (buyer → ticket, or "e")."""
    from apps.core.redis import redis_client_get
    from apps.waitingroom import store

    return redis_client_get().hlen(store.room_keys(event_id)[2])


# --- CPU ----------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of the stack's processes (by Procfile name), of ``extra`` processes, of
    Redis, of this process's children once waited for (named ``children``: wrk), and of the
    whole machine: the cores each used in between two readings."""

    KINDS = (("granian", "web"), ("nginx", "proxy"), ("daphne", "ws"), ("ws_workers", "ws"),
             ("celery", "celery"), ("honcho", "honcho"))  # fmt: skip

    def __init__(self, stack: Stack | None, extra: dict[str, int], children: str) -> None:
        self.children = children
        self.procs: list[tuple[str, psutil.Process]] = [
            (name, psutil.Process(pid)) for name, pid in extra.items()
        ]
        stack_procs = psutil.Process(stack.proc.pid).children(recursive=True) if stack else []
        for proc in stack_procs:
            try:
                command = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            kind = next((k for word, k in self.KINDS if word in command), "misc")
            self.procs.append((kind, proc))
        # Shared with whatever else uses this Redis: its figure is an upper bound for ours.
        self.procs += [("redis", p) for p in psutil.process_iter(["name"])
                       if p.info["name"] == "redis-server"]  # fmt: skip

    def read(self) -> tuple[float, dict[str, float]]:
        used: dict[str, float] = {}
        for kind, proc in self.procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            used[kind] = used.get(kind, 0.0) + times.user + times.system
        machine = psutil.cpu_times()
        busy = ("user", "nice", "system", "irq", "softirq", "steal")
        used["machine"] = sum(getattr(machine, field, 0.0) for field in busy)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used[self.children] = children.ru_utime + children.ru_stime
        return time.monotonic(), used

    @staticmethod
    def cores(before: tuple[float, dict], after: tuple[float, dict]) -> dict[str, float]:
        """Cores used in between, by name; "others": what the machine did besides."""
        seconds = after[0] - before[0]
        cores = {k: (v - before[1].get(k, 0.0)) / seconds for k, v in after[1].items()}
        ours = sum(v for k, v in cores.items() if k != "machine")
        cores["others"] = max(0.0, cores["machine"] - ours)
        return cores


# --- 1. the room without HTTP ---------------------------------------------------------------


def address_of(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def direct_worker(mode: str, event_id: int, first: int, count: int, ready, go, out) -> None:  # type: ignore[no-untyped-def]
    """One process's joins, each a new buyer from an address of its own, timed one by one;
    reports (began, ended, CPU seconds, latencies). ``mode`` "service": services.room_join, what the
    view calls; "view": the whole request through Django (middleware, session, throttle,
    DRF, the view) with its test Client, without a cookie, as wrk sends it, but no server,
    proxy or network."""
    import warnings

    import django

    django.setup()  # the parent's environment: this run's database and Redis prefix
    from django.test import Client

    # WhiteNoise's, for the collected static files a local checkout does not have.
    warnings.filterwarnings("ignore", message="No directory at")

    from apps.waitingroom import selectors, services

    selectors.room_figures(event_id=event_id)  # the connection is open before the clock runs
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT="application/json")
    path = f"/api/events/{event_id}/room"
    ready.put(os.getpid())
    go.wait()
    latencies = array("d")
    began, cpu = time.monotonic(), time.process_time()
    for i in range(first, first + count):
        t = time.perf_counter()
        if mode == "view":
            client.cookies.clear()  # a new buyer: no session yet
            response = client.post(path, REMOTE_ADDR=address_of(i))
            if response.status_code != 200:
                raise RuntimeError(f"the join view answered {response.status_code}")
        else:
            services.room_join(event_id=event_id, buyer=f"direct:{i}", address=address_of(i))
        latencies.append(time.perf_counter() - t)
    out.put((began, time.monotonic(), time.process_time() - cpu, latencies.tobytes()))


def direct_joins(mode: str, event_id: int, first: int, count: int, procs: int) -> dict:
    """``count`` joins (``mode``: see direct_worker) from ``procs`` processes at once
    (spawned: this process has Redis connections and threads a fork would copy); joins/s
    from the first start to the last end."""
    context = multiprocessing.get_context("spawn")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    shares = [len(range(p, count, procs)) for p in range(procs)]
    workers, start = [], first
    # The workers report their CPU in the loop themselves (their rusage would add Django's
    # setup): the meter's "children" are left out.
    meter = CpuMeter(None, {"bench": os.getpid()}, "setup")
    for share in shares:
        worker = context.Process(
            target=direct_worker,
            args=(mode, event_id, start, share, ready, go, out),
            daemon=True,
        )
        worker.start()
        workers.append(worker)
        start += share
    try:
        for _ in workers:
            ready.get(timeout=60)
        before = meter.read()
        go.set()
        results = [out.get(timeout=600) for _ in workers]
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join(5)
    after = meter.read()
    latencies: list[float] = []
    for _, _, _, raw in results:
        latencies.extend(array("d", raw))
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    wall = after[0] - before[0]
    cpu = {k: (v - before[1].get(k, 0.0)) / wall for k, v in after[1].items() if k != "setup"}
    cpu["workers"] = sum(r[2] for r in results) / seconds
    cpu["others"] = max(0.0, cpu["machine"] - cpu["workers"] - cpu.get("redis", 0) - cpu["bench"])
    return {"joins": count, "seconds": seconds, "latencies": latencies, "procs": procs, "cpu": cpu}


def pipelined_joins(event_id: int, first: int, count: int, batch: int = 1000) -> dict:
    """The join script alone: ``count`` joins pipelined from one client, ``batch`` a round
    trip (store.run's script, its arguments as services.room_join gives them): about what
    Redis itself can do, one script at a time."""
    import secrets

    from django.conf import settings

    from apps.core.redis import redis_client_get
    from apps.reservations.redis import inventory
    from apps.waitingroom import store

    script = store._script("join")  # what store.run calls, here into a pipeline
    keys = store.room_keys(event_id)
    base = store.room_base(event_id)
    client = redis_client_get()
    meter = CpuMeter(None, {"client": os.getpid()}, "setup")
    before = meter.read()
    began = time.perf_counter()
    for start in range(first, first + count, batch):
        with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + batch, first + count)):
                payload = {
                    "now": inventory.clock_ms(),
                    "buyer": f"direct:{i}",
                    "draw": secrets.randbelow(2**52) / 2**52,
                    "address_limit": settings.SEATS_ROOM_PLACES_PER_ADDRESS,
                    "address_window_ms": settings.SEATS_NEW_BUYERS_WINDOW_S * 1000,
                }
                script(
                    keys=[*keys, f"{base}-address:{address_of(i)}"],
                    args=[json.dumps(payload)],
                    client=pipe,
                )
            pipe.execute()
    seconds = time.perf_counter() - began
    cpu = CpuMeter.cores(before, meter.read())
    cpu.pop("setup", None)
    return {"joins": count, "seconds": seconds, "cpu": cpu}


def direct_capacity(args: argparse.Namespace) -> dict:
    """Part 1: the room's capacity without HTTP, on an event of its own, turned off after
    (so that the stack's ticker leaves it alone)."""
    from apps.waitingroom import store
    from apps.waitingroom.services import room_update

    n, procs = args.direct_buyers, args.direct_procs
    room = room_event_create(20, rate=args.rate, starts_in_s=3600)
    event_id = room.event_id
    found: dict = {}
    found["early"] = direct_joins("service", event_id, 0, n, procs)
    print(f"  without HTTP, early arrivals: {joins_cell(found['early'])}", flush=True)
    # The start's draw: due at the first script after the start, whichever it is.
    room_update(room, sale_starts_at=datetime.now(tz=UTC) - timedelta(milliseconds=1))
    began = time.perf_counter()
    store.run("status", event_id)
    found["draw"] = {"seconds": time.perf_counter() - began, "drawn": n}
    print(f"  the draw of {n:,} early arrivals: {ms(found['draw']['seconds'])}", flush=True)
    found["open"] = direct_joins("service", event_id, n, n, procs)
    print(f"  without HTTP, after the start: {joins_cell(found['open'])}", flush=True)
    found["pipelined"] = pipelined_joins(event_id, 2 * n, n)
    print(f"  the join script pipelined: {joins_cell(found['pipelined'])}", flush=True)
    # The whole request is ~10× the service's cost: fewer of them say as much.
    views = min(n, VIEW_JOINS)
    found["view"] = direct_joins("view", event_id, 3 * n, views, procs)
    print(f"  the join view in-process: {joins_cell(found['view'])}", flush=True)
    found["places"] = places_count(event_id)
    room_update(room, enabled=False)
    return found


def joins_cell(found: dict) -> str:
    rate = found["joins"] / found["seconds"]
    text = f"{found['joins']:,} joins in {found['seconds']:.2f} s = {rate:,.0f}/s"
    if "procs" in found:
        text += f" from {found['procs']} processes"
    if found.get("latencies"):
        lat = sorted(found["latencies"])
        text += f", each p50 {ms(percentile(lat, 0.5))}, p99 {ms(percentile(lat, 0.99))}"
    if "cpu" in found:
        cpu = found["cpu"]
        used = (f"{k} {cpu[k]:.2f}" for k in ("workers", "client", "redis", "others") if k in cpu)
        text += f"; cores: {', '.join(used)}"
        if "client" in cpu:
            # The script's own cost. Redis is shared with whatever else runs on it: an upper
            # bound, meaningful where our joins are nearly all it does (here).
            per_join = cpu["redis"] * found["seconds"] / found["joins"] * 1e6
            text += f" (Redis ≤ {per_join:,.0f} µs of CPU a join)"
    return text


# --- 2. the stack ---------------------------------------------------------------------------


def stack_start() -> Stack:
    began = time.monotonic()
    # The Server's default SEATS_TRUSTED_PROXIES=2: wrk and the Node clients stand in for
    # the front proxy that names each buyer's address, nginx appends its peer's.
    stack = Stack(processes=STACK_PROCESSES, name="room")
    stack_ready(stack)
    print(
        f"  stack up in {time.monotonic() - began:.1f} s ({' '.join(STACK_PROCESSES)}): proxy "
        f"127.0.0.1:{stack.port}, SEATS_WEB_WORKERS={os.environ.get('SEATS_WEB_WORKERS', '2')}"
        f", SEATS_WEB_THREADS={os.environ.get('SEATS_WEB_THREADS', '1')}, "
        f"SEATS_WS_WORKERS={os.environ.get('SEATS_WS_WORKERS', '2')}",
        flush=True,
    )
    return stack


def ticker_wait(event_id: int, timeout: float = 90.0) -> float:
    """Until the Celery beat's tick has run on the room (it moves the room's tick_ms), so
    no figure measures Celery starting; returns how long that took."""
    began = time.monotonic()
    first = room_hash(event_id).get("tick_ms")
    while time.monotonic() < began + timeout:
        if room_hash(event_id).get("tick_ms") != first:
            return time.monotonic() - began
        time.sleep(0.2)
    raise RuntimeError(f"no admission tick within {timeout:.0f} s: is the celery process up?")


class RoomListener:
    """Our own subscriber on the room's channel, in a thread: each frame the tick (or
    staff's change) PUBLISHes, with the CLOCK_MONOTONIC time it arrived. Also reads the
    room's log (serving → the tick time it was reached, ms) every 2 s: the script trims it
    to the last 120 s, so a long admission window is read as it goes."""

    def __init__(self, event_id: int) -> None:
        import redis
        from django.conf import settings

        from apps.waitingroom import store

        self.event_id = event_id
        self.log_key = store.room_keys(event_id)[5]
        self.client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(store.room_channel(event_id))
        self.frames: list[tuple[float, int, int, bool]] = []  # t, serving, waiting, drawn
        self.log: dict[int, int] = {}  # serving → ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="room-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        log_read = 0.0
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is not None and message["type"] == "message":
                t = time.monotonic()
                body = json.loads(message["data"])
                self.frames.append((t, body["serving"], body["waiting"], body["drawn"]))
            if time.monotonic() - log_read > 2.0:
                self.log_read()
                log_read = time.monotonic()

    def log_read(self) -> None:
        for member, score in self.client.zrange(self.log_key, 0, -1, withscores=True):
            serving = int(member)
            # The script's trim re-adds the value at the horizon with a later score: the
            # first time we saw a value is the tick that reached it.
            self.log[serving] = min(self.log.get(serving, int(score)), int(score))

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(5)
        self.log_read()
        self.pubsub.close()
        self.client.close()


class RoomSockets:
    """The sample of waiting buyers: bench/clients/room_sockets.mjs, one Node process."""

    def __init__(self, base: str, event_id: int, count: int) -> None:
        node = shutil.which("node")
        if node is None or not (NODE_CLIENTS / "node_modules" / "ws").is_dir():
            raise SystemExit("the socket clients need node and `npm ci` in bench/clients")
        config = {
            "base": base, "event_id": event_id, "count": count, "concurrency": 20,
            "timeout_s": 30, "address_base": SOCKET_ADDRESSES,
        }  # fmt: skip
        self.proc = subprocess.Popen(
            [node, str(NODE_CLIENTS / "room_sockets.mjs"), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.answers.put(json.loads(line))

    def answer(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.answers.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.answers.empty():
                    raise RuntimeError(
                        f"room_sockets.mjs exited with {self.proc.returncode}"
                    ) from None
        raise RuntimeError(f"room_sockets.mjs: no answer within {timeout:.0f} s")

    def results(self) -> list[dict]:
        self.proc.stdin.write("stop\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.answer(60)["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


# --- 4. the joins over HTTP -----------------------------------------------------------------


def join_storm(
    wrk: str, stack: Stack, event_id: int, args: argparse.Namespace, meter: CpuMeter
) -> dict:
    """wrk's joins until --buyers were answered 200 (each thread stops at its share; we stop
    wrk once Redis has them all) or --join-seconds passed. Redis' count of places is read
    every 50 ms: when the target was reached is when the last place was in Redis. What wrk
    stopped waiting for is still served (queued in nginx and the web processes): the count
    is read again once it stands still."""
    script = Path(tempfile.gettempdir()) / f"seats-bench-room-{RUN}.lua"
    script.write_text(WRK_JOIN_LUA + WRK_REPORT_LUA)
    quota = math.ceil(args.buyers / args.threads)
    before_places = places_count(event_id)
    command = [
        wrk, "-t", str(args.threads), "-c", str(args.connections),
        # wrk takes whole seconds: we stop it at --join-seconds ourselves.
        "-d", f"{math.ceil(args.join_seconds) + 1}s", "--timeout", "10s", "-s", str(script),
        f"http://127.0.0.1:{stack.port}", "--", f"/api/events/{event_id}/room", str(quota),
    ]  # fmt: skip
    cpu_before = meter.read()
    began = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reached = None
    stopping = False
    progress = []  # (s since the start, places)
    try:
        while proc.poll() is None:
            places = places_count(event_id) - before_places
            elapsed = time.monotonic() - began
            progress.append((elapsed, places))
            if reached is None and places >= args.buyers:
                reached = elapsed
            if (reached is not None or elapsed >= args.join_seconds) and not stopping:
                proc.send_signal(signal.SIGINT)  # wrk prints its summary and exits
                stopping = True
            time.sleep(0.05)
        out, err = proc.communicate(timeout=30)
    finally:
        script.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    ended = time.monotonic()
    cpu = CpuMeter.cores(cpu_before, meter.read())
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
    found = json.loads(line.removeprefix("BENCH "))
    found.update(began=began, ended=ended, reached=reached, cpu=cpu, progress=progress)
    found["places_at_stop"] = progress[-1][1] if progress else 0
    found["places"] = places_settled(event_id) - before_places
    return found


def places_settled(event_id: int, timeout: float = 15.0) -> int:
    """The count of places once it has not moved for half a second."""
    last, since = places_count(event_id), time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline and time.monotonic() - since < 0.5:
        time.sleep(0.1)
        now = places_count(event_id)
        if now != last:
            last, since = now, time.monotonic()
    return last


def progress_cell(progress: list[tuple[float, int]], seconds: float) -> str:
    """Places in Redis at each whole second of the joins."""
    marks = []
    for second in range(1, math.ceil(seconds) + 1):
        upto = [p for t, p in progress if t <= second]
        if upto:
            marks.append(f"{second} s {upto[-1]:,}")
    return ", ".join(marks)


def status_api(stack: Stack, event_id: int) -> dict:
    """GET /api/events/{id}/room without a cookie: the room's figures as anyone sees them."""
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}/api/events/{event_id}/room",
        headers={"Accept": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


# --- the figures ----------------------------------------------------------------------------


def admission_figures(listener: RoomListener, starts_ms: int, args: argparse.Namespace) -> dict:
    """Admissions in (start, start + --admit-seconds]: from the room's log (each value of
    ``serving`` with the tick time that reached it; admissions are earned from the start on,
    so serving / (tick time − start) is the rate, to within one admission), and from our
    subscriber's receipts (first and last tick of the window: the rate as it reached
    the sockets). Ticks: the spacing of the log's times."""
    end_ms = starts_ms + args.admit_seconds * 1000
    log = sorted((t, s) for s, t in listener.log.items() if starts_ms < t <= end_ms)
    found: dict = {"set": args.rate, "ticks": len(log)}
    if log:
        last_ms, last = log[-1]
        found["serving"] = last
        found["log_seconds"] = (last_ms - starts_ms) / 1000
        found["log_rate"] = last * 60 / found["log_seconds"]
        gaps = [(b[0] - a[0]) / 1000 for a, b in zip(log, log[1:], strict=False)]
        found["gaps"] = gaps
    # Our receipts: the monotonic time of the start, from the wall clock now.
    start_mono = time.monotonic() - (time.time() - starts_ms / 1000)
    window = [
        (t, s) for t, s, _, _ in listener.frames
        if start_mono < t <= start_mono + args.admit_seconds and s > 0
    ]  # fmt: skip
    if len(window) >= 2 and window[-1][0] > window[0][0]:
        (t1, s1), (t2, s2) = window[0], window[-1]
        found["frames_rate"] = (s2 - s1) * 60 / (t2 - t1)
    return found


def delay_figures(
    listener: RoomListener, sockets: list[dict], ready: float, stopped: float, storm: dict
) -> dict:
    """Per socket and broadcast frame, receipt − our subscriber's receipt of the same frame.

    Frames are told apart by (serving, waiting); one published twice (nothing changed in
    between but the state, say) is left out, as it cannot be matched. Only frames published
    after every socket was open, and more than a second before they were closed, count;
    an early arrival's socket gets its own frame instead of the first broadcast after the
    draw (its ticket), which is counted apart: draw → own ticket. Sockets that never
    opened are left out (the sockets row counts them).
    """
    sockets = [socket for socket in sockets if not socket["failure"]]
    counts = Counter((s, w) for _, s, w, _ in listener.frames)
    published = {(s, w): t for t, s, w, _ in listener.frames if counts[(s, w)] == 1}
    expected = {k: t for k, t in published.items() if ready <= t <= stopped - 1.0}
    first_drawn = next((t for t, _, _, drawn in listener.frames if drawn), None)
    found: dict = {"during": [], "after": [], "ticket": [], "missed": 0, "replaced": 0}
    found.update(expected=len(expected), sockets=len(sockets))
    found["dropped"] = sum(1 for socket in sockets if socket["closed"])
    for socket in sockets:
        seen: dict[tuple[int, int], float] = {}
        personal = [f for f in socket["frames"] if f[3]]
        for t, serving, waiting, is_personal, _ in socket["frames"]:
            if not is_personal:
                seen.setdefault((serving, waiting), t)
        for key, t_pub in expected.items():
            if key not in seen:
                found["missed"] += 1
                continue
            phase = "during" if storm["began"] <= t_pub <= storm["ended"] else "after"
            found[phase].append(seen[key] - t_pub)
        # An early arrival: its first frame had no ticket; the next of its own has one.
        if personal and personal[0][4] is None and first_drawn is not None:
            ticket = next((f for f in personal[1:] if f[4] is not None), None)
            if ticket is not None:
                found["ticket"].append(ticket[0] - first_drawn)
                found["replaced"] += 1
    # The socket that got its ticket did not get the broadcast it replaced.
    found["missed"] -= found["replaced"]
    return found


def cpu_cell(cpu: dict[str, float]) -> str:
    order = ("web", "proxy", "ws", "celery", "redis", "wrk", "sockets", "bench", "honcho",
             "misc", "others")  # fmt: skip
    parts = [f"{k} {cpu[k]:.2f}" for k in order if cpu.get(k, 0) >= 0.005]
    if cpu.get("others", 0) >= 0.005:
        parts[-1] += " (processes not of this run)"
    return f"{', '.join(parts)}; whole machine {cpu['machine']:.2f} of {os.cpu_count()}"


def report(
    args: argparse.Namespace, direct: dict | None, storm: dict, api: dict, admission: dict,
    delays: dict, sockets_ready: dict,
) -> None:  # fmt: skip
    rows: list[tuple[str, str]] = []
    ok = storm["statuses"].get("200", 0)
    others = {k: v for k, v in storm["statuses"].items() if k != "200"}
    rows.append((
        "joins over HTTP (wrk)",
        f"{ok:,} answered 200 in {storm['seconds']:.2f} s = {ok / storm['seconds']:,.0f}/s; "
        f"other statuses: {json.dumps(others) if others else 'none'}; socket errors "
        f"{storm['socket_errors']}; {args.connections} connections",
    ))  # fmt: skip
    rows.append((
        "join latency",
        f"p50 {storm['p50_ms']:,.1f} ms, p99 {storm['p99_ms']:,.1f} ms, max "
        f"{storm['max_ms']:,.0f} ms",
    ))  # fmt: skip
    if storm["reached"] is not None and storm["reached"] <= args.join_seconds:
        verdict = f"MET: {args.buyers:,} places in Redis after {storm['reached']:.2f} s"
    elif storm["reached"] is not None:
        verdict = f"NOT MET: {args.buyers:,} places took {storm['reached']:.2f} s"
    else:
        rate = storm["places_at_stop"] / storm["seconds"]
        verdict = (
            f"NOT MET: {storm['places_at_stop']:,} of {args.buyers:,} enqueued in "
            f"{storm['seconds']:.2f} s ({rate:,.0f}/s); this HTTP path on this machine does "
            f"not reach {args.buyers:,} in {args.join_seconds:g} s"
        )
    rows.append((f"{args.buyers:,} buyers within {args.join_seconds:g} s over HTTP", verdict))
    rows.append((
        "enqueued (Redis / status API)",
        f"{storm['places_at_stop']:,} places in Redis when wrk was stopped, "
        f"{storm['places']:,} once the requests in flight were served (the sockets' "
        f"{args.sockets:,} not counted); status API after: waiting {api['waiting']:,} + "
        f"admitted {api['serving']:,} = {api['waiting'] + api['serving']:,} (sockets "
        f"included)",
    ))  # fmt: skip
    rows.append((
        f"places by second of the joins (the sale started at {args.early_seconds:g} s)",
        progress_cell(storm["progress"], storm["seconds"]),
    ))  # fmt: skip
    if direct:
        rows.append(("join view in-process (Django, no server)", joins_cell(direct["view"])))
        rows.append(("room_join without HTTP, early", joins_cell(direct["early"])))
        rows.append(("room_join without HTTP, open", joins_cell(direct["open"])))
        rows.append(("join script alone, pipelined", joins_cell(direct["pipelined"])))
        rows.append((
            f"the draw of {direct['draw']['drawn']:,} early arrivals",
            f"{ms(direct['draw']['seconds'])} (one script: Redis answers nothing else)",
        ))  # fmt: skip
    rows.append(("CPU during the joins (cores)", cpu_cell(storm["cpu"])))
    if "log_rate" in admission:
        deviation = (admission["log_rate"] / admission["set"] - 1) * 100
        within = "within 5 %" if abs(deviation) <= 5 else "NOT within 5 %"
        frames = admission.get("frames_rate")
        rows.append((
            f"admission rate, {args.admit_seconds:g} s from the start",
            f"set {admission['set']:,}/min, achieved {admission['log_rate']:,.1f}/min "
            f"({deviation:+.2f} %, {within}): {admission['serving']:,} admitted by the tick "
            f"{admission['log_seconds']:.2f} s after the start"
            + (f"; as our subscriber received the ticks {frames:,.1f}/min" if frames else ""),
        ))  # fmt: skip
        gaps = sorted(admission["gaps"])
        rows.append((
            "admission ticks",
            f"{admission['ticks']} in the window, spacing p50 {percentile(gaps, 0.5):.2f} s, "
            f"max {max(gaps, default=0):.2f} s" if gaps else f"{admission['ticks']}",
        ))  # fmt: skip
    else:
        rows.append(("admission rate", "no admission in the window (nobody waiting?)"))
    failures = sockets_ready["failures"]
    rows.append((
        "sockets",
        f"{sockets_ready['opened']:,} of {args.sockets:,} open in "
        f"{sockets_ready['seconds']:.1f} s (join, then socket)"
        + (f"; failed: {json.dumps(failures)}" if failures else "")
        + f"; closed by the server before the end: {delays['dropped']}",
    ))  # fmt: skip
    delays_all = delays["during"] + delays["after"]
    rows.append(("position-update delay (PUBLISH → socket)", spread(delays_all)))
    rows.append(("… while the joins ran", spread(delays["during"])))
    rows.append(("… after them", spread(delays["after"])))
    rows.append((
        "… frames not received",
        f"{delays['missed']:,} of {delays['expected'] * delays['sockets']:,} "
        f"({delays['expected']:,} frames × {delays['sockets']:,} sockets)",
    ))  # fmt: skip
    rows.append(("draw → early arrival's own ticket frame", spread(delays["ticket"])))
    print()
    print("| figure | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


# --- the run --------------------------------------------------------------------------------


def celery_queues_cleanup() -> int:
    """This run's Celery keys (its broker's own prefix, on the broker's Redis database)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}:celery:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def live_run(args: argparse.Namespace, direct: dict | None) -> None:
    """Parts 2 to 5, with every process they start stopped at the end."""
    wrk = wrk_path()
    stack = stack_start()
    sockets = listener = None
    try:
        room = room_event_create(40, rate=args.rate, starts_in_s=3600)
        event_id = room.event_id
        listener = RoomListener(event_id)
        print(f"  event {event_id}: room on, {args.rate:,}/min; first tick after "
              f"{ticker_wait(event_id):.1f} s", flush=True)  # fmt: skip
        warm_up(wrk, stack, args.connections)
        sockets = RoomSockets(f"http://127.0.0.1:{stack.port}", event_id, args.sockets)
        ready_answer = sockets.answer(180)["ready"]
        ready = time.monotonic()
        print(f"  sockets: {ready_answer}", flush=True)
        meter = CpuMeter(stack, {"sockets": sockets.proc.pid, "bench": os.getpid()}, "wrk")
        starts_ms = room_start_in(room, args.early_seconds)
        storm = join_storm(wrk, stack, event_id, args, meter)
        print(
            f"  joins: {storm['places']:,} places in {storm['seconds']:.2f} s; target "
            + (f"reached after {storm['reached']:.2f} s" if storm["reached"] else "not reached"),
            flush=True,
        )
        api = status_api(stack, event_id)
        # The window's last tick, and a second for its frame to reach the sockets.
        end = starts_ms / 1000 + args.admit_seconds + 2.5
        time.sleep(max(0.0, end - time.time()))
        stopped = time.monotonic()
        results = sockets.results()
        listener.stop()
        admission = admission_figures(listener, starts_ms, args)
        delays = delay_figures(listener, results, ready, stopped, storm)
        report(args, direct, storm, api, admission, delays, ready_answer)
    finally:
        if sockets is not None:
            sockets.stop()
        if listener is not None:
            listener.stop()
        stack.stop(keep_log=bool(os.environ.get("BENCH_KEEP_LOG")))


def main() -> None:
    args = args_parse()
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else "python"
    settings = os.environ.get("DJANGO_SETTINGS_MODULE")
    command = shlex.join([python, *sys.argv])
    if settings:
        command = f"DJANGO_SETTINGS_MODULE={settings} {command}"
    # DEBUG off as in the stack (support.Server): the in-process view joins run alike.
    bench_env_setup(defaults={"DJANGO_DEBUG": "false"})
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"bench/waiting_room.py run {RUN}: {os.cpu_count()} cores (load {load}), Python "
        f"{platform.python_version()}, settings {os.environ['DJANGO_SETTINGS_MODULE']}; "
        f"database {BENCH_DB}, prefix {PREFIX}\n  command: {command}",
        flush=True,
    )
    if 2 * (args.sockets + args.connections) > PROXY_CONNECTIONS:
        print(
            f"  note: the local proxy (scripts/proxy.py) has {PROXY_CONNECTIONS:,} "
            "worker_connections, two per proxied connection: past about "
            f"{PROXY_CONNECTIONS // 2 - args.connections:,} sockets it refuses some",
            flush=True,
        )
    bench_database_create()
    try:
        direct = direct_capacity(args) if args.direct_buyers > 0 else None
        live_run(args, direct)
    finally:
        keys, queues = redis_cleanup(), celery_queues_cleanup()
        bench_database_drop()
        print(
            f"\ncleanup: {keys:,} Redis keys under {PREFIX}:* and {queues} Celery keys "
            f"deleted, database {BENCH_DB} dropped"
        )
        print(f"command: {command}")


if __name__ == "__main__":
    main()
