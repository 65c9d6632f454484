"""Live seat map: delivery delay and connect storms, on one ws worker and on two.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/gateway.py

Every scenario runs twice in one invocation, on the Procfile's ``ws`` process
(``scripts/ws_workers.py``: daphne processes sharing one listening socket) started with
SEATS_WS_WORKERS=1 (``single``, the one-process baseline) and SEATS_WS_WORKERS=2
(``shipped``). The two runs of a scenario follow each other, single first for the first
scenario, shipped first for the next, and so on, so both see the machine alike.

Scenarios (``--scenarios``, default all three):

- ``steady``: ``--clients`` sockets (default 1,000) on one event; one-seat holds at
  ``--rate`` per second (default 20) for ``--seconds`` (default 10);
- ``large``: ``--large-clients`` sockets (default 5,000); ``--large-rate`` holds per second
  (default 50) for ``--seconds``;
- ``storm``: ``--storm-clients`` sockets (default 2,000) opened within ``--storm-seconds``
  (default 2), no holds.

Each run gets an event of its own (``--seats`` seats, more if its holds need them) in this
run's throwaway Postgres database (created, migrated, dropped), and a ws server on a free
port. The holds are made in this process, through ``services.hold_create`` (the hold
script, the outbox), each by a new holder: not over HTTP, because this measures the live
map, and HTTP load would only compete for the cores. The outbox relay and the ``gateway``
bridge run in threads of this process for the whole invocation, on this run's own Kafka
topics and Redis prefix; before a run's sockets connect, one hold's frame is awaited on the
event's live channel, so no run measures the bridge joining its consumer group.

The clients run in ``--client-procs`` processes (default 2) of ``bench/clients/crowd.mjs``
(Node, after ``npm ci`` there), or with ``--clients-in python`` of this module's asyncio
``websockets`` clients, which take about as much CPU as the server they measure; both
send the Origin a browser on the site would and do the same steps. A client records,
per seat ``seq``, the ``time.monotonic()`` at which the frame carrying it arrived: that
clock is system-wide on Linux, so it compares with the time the hold call returned here.
A client that sees a seq gap asks for one resync, as the browser does (frontend
src/live/socket.ts); the gap's seqs that the next snapshot covers are healed, not lost.

Printed per (scenario, configuration): connect time (first connect started → every socket
holding its snapshot; per socket connect → snapshot p50/p99), sockets refused (TCP or HTTP)
/ failed / timed out; for the holds: delay from the hold call's return to each client's
receipt of its ``seat.held`` (p50/p99/max), deliveries and frames received per second,
seqs lost, resyncs and the seqs they healed. A storm's handshakes get ``--handshake-timeout``
(5 s, as a browser gives up); the other scenarios' sockets are the audience, not what is
measured, so they get 30 s.

Needs a Kafka-compatible broker (``scripts/backing_services.py exec -- …``), Redis and
Postgres. Redis keys live under a random ``seats-bench-…`` prefix and are deleted at the
end, with the database and the topics. Prints figures; never asserts timings (README,
Benchmarks). Clients, relay, bridge and server share one machine, so the delays are an
upper bound, not a capacity plan; ``BENCH_KEEP_LOG=1`` keeps the servers' logs.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import queue
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass, replace
from pathlib import Path

import websockets
from support import (
    BENCH_DB,
    PREFIX,
    RUN,
    SEAT_TOPIC,
    STATS_TOPIC,
    Server,
    bench_cleanup,
    bench_database_create,
    bench_env_setup,
    bench_row_seats,
    free_port,
    percentile,
    relay_and_bridge_start,
)

CONFIGS = (("single", 1), ("shipped", 2))
SEATS_PER_ROW = 50
HOLD_TTL_S = 3600  # nothing expires mid-run (no sweep runs anyway)
AUDIENCE_HANDSHAKE_S = 30.0
RESYNC = '{"type":"resync"}'
NOT_CONNECTED = ("refused", "failed", "timeout")


@dataclass(frozen=True)
class Scenario:
    name: str
    sockets: int
    rate: float  # holds per second; 0 for a connect storm
    seconds: float  # of holds; for a storm, within which its sockets are opened
    ramp: float  # new sockets per second
    handshake_s: float


# --- the clients (child processes: no Django, no database) ----------------------------------
#
# They are started with "spawn", not "fork": this process runs the relay's and the bridge's
# threads (and Kafka's), which a fork would copy mid-lock. A spawned child imports this
# module afresh, which is why Django is set up in main(), not at import.


@dataclass(frozen=True)
class CrowdSpec:
    uri: str
    origin: str
    indices: range  # this process's clients, by number across all processes
    ramp: float
    handshake_s: float
    snapshot_s: float


class Client:
    """One socket's record, kept cheap: per seat change the hot loop appends two numbers."""

    __slots__ = (
        "start_at", "t_start", "t_snapshot", "failure", "first_seq", "have", "cover",
        "awaiting", "resyncs", "frames", "seqs", "times", "ws", "done",
    )  # fmt: skip

    def __init__(self, start_at: float) -> None:
        self.start_at = start_at
        self.t_start = self.t_snapshot = 0.0
        self.failure = ""  # refused, failed or timeout (never connected); dropped (later)
        self.first_seq = self.have = self.cover = 0  # have: every seq up to it seen or covered
        self.awaiting = False  # a resync asked for, its snapshot not yet here
        self.resyncs = self.frames = 0
        self.seqs, self.times = array("q"), array("d")
        self.ws = None
        self.done = False


class Crowd:
    """The clients of one process, and the two moments the process waits for."""

    def __init__(self, spec: CrowdSpec, start_at: float) -> None:
        self.spec = spec
        self.clients = [Client(start_at + g / spec.ramp) for g in spec.indices]
        self.pending = len(self.clients)  # neither holding a snapshot nor failed
        self.settled = asyncio.Event()
        self.undone = len(self.clients)  # yet to see the last hold's seq (or given up)
        self.finished = asyncio.Event()
        self.target = float("inf")
        self.closing = False
        if not self.clients:
            self.settled.set()

    def settle(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.settled.set()

    def finish(self, c: Client) -> None:
        if not c.done:
            c.done = True
            self.undone -= 1
        if self.undone == 0 and self.target != float("inf"):
            self.finished.set()

    def target_set(self, seq: int) -> None:
        self.target = seq
        for c in self.clients:
            if c.done or c.have >= seq:
                self.finish(c)
        if self.undone == 0:
            self.finished.set()


async def client_run(crowd: Crowd, c: Client) -> None:
    spec = crowd.spec
    await asyncio.sleep(max(0.0, c.start_at - time.monotonic()))
    c.t_start = time.monotonic()
    try:
        # No client pings (the server pings; websockets answers them); proxy=None: a proxy
        # variable in the environment must not reroute 127.0.0.1.
        ws = await websockets.connect(
            spec.uri,
            origin=spec.origin,
            open_timeout=spec.handshake_s,
            ping_interval=None,
            max_size=None,
            close_timeout=2,
            proxy=None,
        )
    except TimeoutError:
        c.failure = "timeout"
    except (ConnectionRefusedError, websockets.InvalidStatus):
        c.failure = "refused"
    except Exception:  # noqa: BLE001 - counted: a reset, EMFILE, a bad handshake …
        c.failure = "failed"
    if c.failure:
        crowd.settle()
        crowd.finish(c)
        return
    c.ws = ws
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), spec.snapshot_s))
        if first.get("type") != "snapshot":
            raise ValueError(first.get("type"))
    except TimeoutError:
        c.failure = "timeout"
    except Exception:  # noqa: BLE001 - closed before its snapshot, or something else first
        c.failure = "failed"
    if c.failure:
        crowd.settle()
        crowd.finish(c)
        await ws.close()
        return
    c.t_snapshot = time.monotonic()
    c.first_seq = c.have = first["seq"]
    crowd.settle()
    loads, seqs, times = json.loads, c.seqs, c.times
    try:
        async for text in ws:
            now = time.monotonic()
            message = loads(text)
            kind = message["type"]
            if kind == "changes":
                c.frames += 1
                for item in message["items"]:
                    # stats.updated items carry the stats seq, not the seat seq.
                    if item["type"].startswith("seat.") and item["seq"] > c.have:
                        seq = item["seq"]
                        if seq != c.have + 1 and not c.awaiting:
                            c.awaiting = True
                            c.resyncs += 1
                            await ws.send(RESYNC)
                        seqs.append(seq)
                        times.append(now)
                        c.have = seq
            elif kind == "snapshot":
                c.awaiting = False
                c.cover = max(c.cover, message["seq"])
                c.have = max(c.have, message["seq"])
            if c.have >= crowd.target:
                crowd.finish(c)
    except websockets.ConnectionClosed:
        pass
    if not crowd.closing:
        c.failure = "dropped"
        crowd.finish(c)


async def crowd_run(conn, spec: CrowdSpec) -> None:  # type: ignore[no-untyped-def]
    """The parent's orders, in turn: start time; then the last hold's seq (None: close)."""
    loop = asyncio.get_running_loop()

    async def order():  # type: ignore[no-untyped-def]
        return await loop.run_in_executor(None, conn.recv)

    conn.send("booted")
    crowd = Crowd(spec, await order())
    tasks = [asyncio.create_task(client_run(crowd, c)) for c in crowd.clients]
    await crowd.settled.wait()
    conn.send([(c.t_start, c.t_snapshot, c.failure) for c in crowd.clients])
    target, grace = await order()
    if target is not None:
        crowd.target_set(target)
        # Past the grace period, what a client is still missing is lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crowd.finished.wait(), grace)
    crowd.closing = True
    await asyncio.gather(
        *(c.ws.close() for c in crowd.clients if c.ws is not None), return_exceptions=True
    )
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(
        [
            (c.seqs, c.times, c.first_seq, c.cover, c.resyncs, c.frames, c.failure)
            for c in crowd.clients
        ]
    )


def crowd_main(conn, spec: CrowdSpec) -> None:  # type: ignore[no-untyped-def]
    nofile_raise()  # a socket is a file: 5,000 of them need more than a default 1,024
    try:
        asyncio.run(crowd_run(conn, spec))
    finally:
        conn.close()


def nofile_raise() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Crowds:
    """The client processes of one run, and their answers to this one."""

    def __init__(self, spec: CrowdSpec, sockets: int, procs: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.members = []
        for p in range(procs):
            ours, theirs = context.Pipe()
            proc = context.Process(
                target=crowd_main,
                args=(theirs, replace(spec, indices=range(p, sockets, procs))),
                name=f"bench-clients-{p}",
                daemon=True,
            )
            proc.start()
            theirs.close()
            self.members.append((proc, ours))

    def send(self, message: object) -> None:
        for _, conn in self.members:
            conn.send(message)

    def receive(self, timeout: float) -> list:
        """One answer from each process, in order."""
        deadline = time.monotonic() + timeout
        answers = []
        for proc, conn in self.members:
            while not conn.poll(0.2):
                if not proc.is_alive():
                    raise RuntimeError(f"{proc.name} exited with {proc.exitcode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name}: no answer within {timeout:.0f} s")
            answers.append(conn.recv())
        return answers

    def stop(self) -> None:
        for proc, conn in self.members:
            proc.join(15)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            conn.close()


NODE_CLIENTS = Path(__file__).resolve().parent / "clients"


class NodeCrowds:
    """Like Crowds, with the clients in Node (bench/clients/crowd.mjs): the same steps at a
    fraction of the CPU, so that at 5,000 sockets the clients do not starve the server
    they measure. The same orders and answers, as JSON lines over stdin and stdout."""

    def __init__(self, spec: CrowdSpec, sockets: int, procs: int) -> None:
        node = shutil.which("node")
        if node is None or not (NODE_CLIENTS / "node_modules" / "ws").is_dir():
            raise SystemExit(
                "the Node clients need node and `npm ci` in bench/clients (or: --clients-in python)"
            )
        self.members = []
        for p in range(procs):
            count = len(range(p, sockets, procs))
            proc = subprocess.Popen(
                [node, str(NODE_CLIENTS / "crowd.mjs"), spec.uri, spec.origin, str(p),
                 str(procs), str(count), str(spec.ramp), str(spec.handshake_s),
                 str(spec.snapshot_s)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                preexec_fn=nofile_raise,
            )  # fmt: skip
            answers: queue.Queue = queue.Queue()
            reader = threading.Thread(target=self._read, args=(proc, answers), daemon=True)
            reader.start()
            self.members.append((proc, answers, reader))

    @staticmethod
    def _read(proc: subprocess.Popen, answers: queue.Queue) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            answers.put(json.loads(line))

    def send(self, message: object) -> None:
        for proc, _, _ in self.members:
            proc.stdin.write(json.dumps(message) + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

    def receive(self, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        answers = []
        for proc, queued, reader in self.members:
            while True:
                try:
                    answers.append(queued.get(timeout=0.2))
                    break
                except queue.Empty:
                    if proc.poll() is not None:
                        reader.join(60)  # its last answer may still be being parsed
                        if not queued.empty():
                            continue
                        raise RuntimeError(f"a Node client exited with {proc.returncode}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"a Node client: no answer within {timeout:.0f} s"
                        ) from None
        return answers

    def stop(self) -> None:
        for proc, _, _ in self.members:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# --- the server side and the holds (this process) ------------------------------------------


def event_create(seats: int, label: str) -> tuple[int, list[str]]:
    """An event of its own per run, on sale: a fresh seq, no earlier run's sockets. Not
    support.bench_event_create, whose venue name (unique) says only the run and the size."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.reservations import services
    from apps.reservations.layouts import SeatGrid
    from apps.reservations.models import Event, PriceCategory, Section, Venue

    venue = Venue.objects.create(name=f"Bench hall {RUN} {label}", focal_x=0.0, focal_y=-50.0)
    category = PriceCategory.objects.create(venue=venue, name="All", price=Decimal("50"))
    section = Section.objects.create(venue=venue, name="A", category=category)
    grid = SeatGrid(rows=-(-seats // SEATS_PER_ROW), seats_per_row=SEATS_PER_ROW)
    services.section_seats_generate(section=section, grid=grid)
    event = Event.objects.create(
        venue=venue,
        name=f"Bench show {RUN} {label}",
        starts_at=timezone.now() + timedelta(days=30),
        sale_status=Event.SaleStatus.DRAFT,
        hold_ttl_seconds=HOLD_TTL_S,
    )
    services.event_open_sale(event=event)
    return event.pk, [key for row in bench_row_seats(event) for key in row]


def pipeline_wait(event_id: int, seat: str, timeout: float = 90.0) -> float:
    """Hold ``seat`` and wait for its frame on the event's live channel: the relay and the
    bridge are flowing (the bridge's first group join takes seconds). Seconds it took."""
    from apps.core.redis import redis_client_get
    from apps.gateway.fanout import live_channel
    from apps.reservations import services

    pubsub = redis_client_get().pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(live_channel(event_id))
        began = time.monotonic()
        hold = services.hold_create(event_id=event_id, holder=f"bench:{RUN}:warm", seats=[seat])
        while time.monotonic() < began + timeout:
            message = pubsub.get_message(timeout=1.0)
            if message is not None and any(
                item["type"].startswith("seat.") and item["seq"] == hold.seq
                for item in json.loads(message["data"])["items"]
            ):
                return time.monotonic() - began
        raise RuntimeError(f"no frame with seq {hold.seq} within {timeout:.0f} s")
    finally:
        pubsub.close()


def ws_start(config: str, workers: int) -> Server:
    # ws_workers.py binds SEATS_WS_PORT; Server's own port (which wait_ready polls) is
    # picked first so the two are the same.
    port = free_port()
    return Server(
        {"SEATS_WS_WORKERS": str(workers), "SEATS_WS_PORT": str(port)},
        command=[sys.executable, "scripts/ws_workers.py"],
        name=f"ws-{config}",
        port=port,
    )


def workers_wait(server: Server, count: int, timeout: float = 60.0) -> bool:
    """Until ``count`` daphne workers watch the shared listening socket (False: not seen).

    wait_ready proves that one worker answers; the kernel hands each connection to a
    worker that is accepting, so a storm started while the other still imports Django
    would all land on the first. Read from /proc (Linux): the socket's inode, from the
    parent's copy of the fd named by ``--fd``, appears in a worker's epoll set (fdinfo's
    ``ino:``, in hex) once it accepts, whatever fd number the worker gave its dup.
    """
    parent = Path(f"/proc/{server.proc.pid}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = 0
        try:
            children = (parent / "task" / str(server.proc.pid) / "children").read_text()
        except OSError:
            return False
        for pid in children.split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                fd = argv[argv.index(b"--fd") + 1].decode()
                inode = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(parent / "fd" / fd))
                watched = f"ino:{int(inode[1]):x} " if inode else None
                if watched and any(
                    watched in (info.read_text() + " ")
                    for info in Path(f"/proc/{pid}/fdinfo").iterdir()
                ):
                    listening += 1
            except (OSError, ValueError, IndexError):
                continue
        if listening >= count:
            return True
        time.sleep(0.2)
    return False


def holds_make(event_id: int, seats: list[str], rate: float) -> tuple[dict[int, float], int, float]:
    """One-seat holds at a steady rate, each by a new holder: seq → when the call returned
    (monotonic, as the clients record), how many were refused, and how far the latest call
    started behind its schedule (the rate was met if that is small)."""
    from apps.core.exceptions import DomainError
    from apps.reservations import services

    responded, refused, behind = {}, 0, 0.0
    interval, began = 1.0 / rate, time.monotonic()
    for n, seat in enumerate(seats):
        delay = began + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        behind = max(behind, -delay)
        try:
            hold = services.hold_create(event_id=event_id, holder=f"bench:{RUN}:{n}", seats=[seat])
        except DomainError:
            refused += 1
            continue
        responded[hold.seq] = time.monotonic()
    return responded, refused, behind


# --- one run ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"


def run_once(scenario: Scenario, config: str, workers: int, args) -> dict:  # type: ignore[no-untyped-def]
    label = f"  {scenario.name}/{config}"
    holds = int(scenario.rate * scenario.seconds)
    event_id, seats = event_create(max(args.seats, holds + 1), f"{scenario.name} {config}")
    notes = [f"event {event_id} ({len(seats):,} seats)"]
    if holds:
        notes.append(
            f"pipeline: first frame {pipeline_wait(event_id, seats[0]):.1f} s after its hold"
        )
    began = time.monotonic()
    server, crowds, failed = ws_start(config, workers), None, True
    try:
        server.wait_ready(timeout=60)
        listening = workers_wait(server, workers)
        notes.append(
            f"ws up ({workers} worker{'s' * (workers > 1)}) in {time.monotonic() - began:.1f} s"
            + ("" if listening else ", all workers accepting not confirmed (/proc)")
        )
        print(f"{label}: " + "; ".join(notes), flush=True)
        spec = CrowdSpec(
            uri=f"ws://127.0.0.1:{server.port}/ws/events/{event_id}/",
            # AllowedHostsOriginValidator: the page's own origin, as a browser sends it.
            origin=f"http://127.0.0.1:{server.port}",
            indices=range(0),
            ramp=scenario.ramp,
            handshake_s=scenario.handshake_s,
            snapshot_s=args.snapshot_timeout,
        )
        kind = NodeCrowds if args.clients_in == "node" else Crowds
        crowds = kind(spec, scenario.sockets, max(1, min(args.client_procs, scenario.sockets)))
        crowds.receive(60)  # booted: the connects are scheduled from a common start
        crowds.send(time.monotonic() + 0.5)
        connects = [
            record
            for answer in crowds.receive(
                scenario.sockets / scenario.ramp + scenario.handshake_s + args.snapshot_timeout + 30
            )
            for record in answer
        ]
        row = connect_figures(scenario, config, connects)
        print(
            f"{label}: {row['connected']:,} of {scenario.sockets:,} sockets holding a snapshot "
            f"{row['all connected']} after the first connect; refused / failed / timed out "
            f"{row['refused / failed / timed out']}",
            flush=True,
        )
        responded: dict[int, float] = {}
        if holds:
            responded, refused, behind = holds_make(event_id, seats[1 : holds + 1], scenario.rate)
            print(
                f"{label}: {len(responded):,} holds at {scenario.rate:g}/s ({refused} refused), "
                f"the latest {ms(behind)} ms behind its schedule",
                flush=True,
            )
        crowds.send((max(responded, default=None), args.grace))
        results = [r for answer in crowds.receive(args.grace + 120) for r in answer]
        if responded:
            delivery_figures(row, responded, results)
            print(
                f"{label}: {row['deliveries']} of {len(responded) * row['connected']:,} "
                f"deliveries; {row['lost']} lost; resyncs (seqs healed) "
                f"{row['resyncs (healed)']}; {row['dropped']} sockets dropped",
                flush=True,
            )
        failed = False
        return row
    finally:
        if crowds is not None:
            crowds.stop()
        server.stop(keep_log=failed or os.environ.get("BENCH_KEEP_LOG") is not None)


def connect_figures(scenario: Scenario, config: str, records: list) -> dict:
    ok = [(start, snapshot) for start, snapshot, failure in records if not failure]
    each = sorted(snapshot - start for start, snapshot in ok)
    first = min(start for start, _, _ in records)
    counts = [sum(1 for *_, failure in records if failure == k) for k in NOT_CONNECTED]
    return {
        "scenario": scenario.name,
        "config": config,
        "sockets": f"{scenario.sockets:,}",
        "holds/s": f"{scenario.rate:g}" if scenario.rate else "–",
        "all connected": f"{max(s for _, s in ok) - first:.2f} s" if ok else "–",
        "connect p50 / p99 ms": f"{ms(percentile(each, 0.5))} / {ms(percentile(each, 0.99))}"
        if each
        else "–",
        "refused / failed / timed out": " / ".join(str(n) for n in counts),
        "delay p50 / p99 / max ms": "–",
        "deliveries/s": "–",
        "frames/s": "–",
        "lost": "–",
        "resyncs (healed)": "–",
        "connected": len(ok),
    }


def delivery_figures(row: dict, responded: dict[int, float], results: list) -> None:
    """Per (client, hold): delivered (its delay), healed by a resync snapshot, or lost."""
    delays, lost, healed, resyncs, frames, dropped, last = [], 0, 0, 0, 0, 0, 0.0
    for seqs, times, first_seq, cover, n_resyncs, n_frames, failure in results:
        if failure in NOT_CONNECTED:
            continue
        dropped += failure == "dropped"
        resyncs += n_resyncs
        frames += n_frames
        got = dict(zip(seqs, times, strict=True))
        if times:
            last = max(last, max(times))
        for seq, returned in responded.items():
            at = got.get(seq)
            if at is not None:
                delays.append(at - returned)
            elif seq <= cover or seq <= first_seq:
                healed += 1
            else:
                lost += 1
    delays.sort()
    span = max(last - min(responded.values()), 1e-9)
    row.update(
        {
            "delay p50 / p99 / max ms": " / ".join(
                ms(x) for x in (percentile(delays, 0.5), percentile(delays, 0.99), delays[-1])
            )
            if delays
            else "–",
            "deliveries/s": f"{len(delays) / span:,.0f}",
            "frames/s": f"{frames / span:,.0f}",
            "lost": f"{lost:,}",
            "resyncs (healed)": f"{resyncs:,} ({healed:,})",
            "deliveries": f"{len(delays):,}",
            "dropped": dropped,
        }
    )


COLUMNS = (
    "scenario", "config", "sockets", "holds/s", "all connected", "connect p50 / p99 ms",
    "refused / failed / timed out", "delay p50 / p99 / max ms", "deliveries/s", "frames/s",
    "lost", "resyncs (healed)",
)  # fmt: skip


def table_print(rows: list[dict]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")


def scenarios_from(args) -> list[Scenario]:  # type: ignore[no-untyped-def]
    known = {
        "steady": Scenario(
            "steady", args.clients, args.rate, args.seconds, args.ramp, AUDIENCE_HANDSHAKE_S
        ),
        "large": Scenario(
            "large",
            args.large_clients,
            args.large_rate,
            args.seconds,
            args.ramp,
            AUDIENCE_HANDSHAKE_S,
        ),
        "storm": Scenario(
            "storm",
            args.storm_clients,
            0.0,
            args.storm_seconds,
            args.storm_clients / args.storm_seconds,
            args.handshake_timeout,
        ),
    }
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = set(names) - set(known)
    if unknown:
        raise SystemExit(
            f"unknown scenarios: {', '.join(sorted(unknown))} (know {', '.join(known)})"
        )
    return [known[n] for n in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="steady,large,storm")
    parser.add_argument("--clients", type=int, default=1_000, help="steady: sockets")
    parser.add_argument("--rate", type=float, default=20.0, help="steady: holds per second")
    parser.add_argument("--large-clients", type=int, default=5_000)
    parser.add_argument("--large-rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="of holds")
    parser.add_argument("--storm-clients", type=int, default=2_000)
    parser.add_argument("--storm-seconds", type=float, default=2.0)
    parser.add_argument("--ramp", type=float, default=500.0, help="steady, large: sockets/s")
    parser.add_argument("--handshake-timeout", type=float, default=5.0, help="storm")
    parser.add_argument("--snapshot-timeout", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=10.0, help="for stragglers, seconds")
    parser.add_argument("--seats", type=int, default=2_000, help="at least, per event")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--clients-in",
        choices=("node", "python"),
        default="node",
        help="the clients' language: node (bench/clients, after `npm ci` there) costs less CPU",
    )
    args = parser.parse_args()
    scenarios = scenarios_from(args)

    # Here, not at import: the client processes import this module afresh and need neither
    # Django nor this run's database. The topics are this run's own, like keys and database.
    bench_env_setup(
        defaults={"DJANGO_DEBUG": "false"},
        KAFKA_TOPIC_SEAT_EVENTS=SEAT_TOPIC,
        KAFKA_TOPIC_STATS_EVENTS=STATS_TOPIC,
    )
    from django.conf import settings

    from apps.core.kafka import topics_ensure

    nofile = nofile_raise()  # inherited by the servers: one worker may hold every socket
    described = "; ".join(
        f"{s.name} {s.sockets:,} sockets"
        + (
            f" (opened at {s.ramp:g}/s) × {s.rate:g} holds/s × {s.seconds:g} s"
            if s.rate
            else f" within {s.seconds:g} s, {s.handshake_s:g} s handshake budget"
        )
        for s in scenarios
    )
    print(
        f"bench/gateway.py run {RUN}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, open files {nofile:,}; {described}; configs "
        f"{', '.join(f'{name} (SEATS_WS_WORKERS={n})' for name, n in CONFIGS)}; "
        f"{args.client_procs} {args.clients_in} client processes; coalescing window "
        f"{settings.LIVE_COALESCE_MS}–{settings.LIVE_COALESCE_MAX_MS} ms at "
        f"{settings.LIVE_WRITES_PER_S:,} writes/s a process; "
        f"database {BENCH_DB}, prefix {PREFIX}, topics {SEAT_TOPIC}",
        flush=True,
    )
    stop, threads, db_created, rows = threading.Event(), [], False, []
    try:
        bench_database_create()
        db_created = True
        topics_ensure([SEAT_TOPIC, STATS_TOPIC])
        threads = relay_and_bridge_start(stop, group_id=f"bench-gateway-{RUN}")
        for i, scenario in enumerate(scenarios):
            for config, workers in CONFIGS if i % 2 == 0 else CONFIGS[::-1]:
                rows.append(run_once(scenario, config, workers, args))
        order = [s.name for s in scenarios]
        rows.sort(key=lambda r: (order.index(r["scenario"]), r["config"] != CONFIGS[0][0]))
        print()
        table_print(rows)
        print()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        print("cleanup: " + bench_cleanup(database=db_created))


if __name__ == "__main__":
    main()
