"""What the HTTP benches share: wrk driving real buyers against a server this run starts.

The venue and its events, the crowd of buyers (each with a real session, CSRF token and
address of their own), the request lines wrk reads, the servers (the shipped web tier or
one daphne), warm-up, the wrk run itself and the double-booking check of a hold run.

Named ``wrkload`` rather than ``wrk``: the benches keep the wrk binary's path in a local
variable ``wrk``. Import it after ``support`` (which puts the project on ``sys.path``);
what needs Django imports it inside, so importing this module needs no ``django.setup()``.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import RUN, Server, bench_event_create, free_port, holds_check

BIN = Path(sys.executable).parent

# One wrk Lua script for every request kind. Each thread reads its share of the prepared
# request lines ("cookie|csrf|address|body|path"), sends the next one on every request,
# and counts statuses (WRK_REPORT_LUA numbers the threads and prints the result).
WRK_LUA = r"""
function init(args)
  nthreads, run = tonumber(args[2]), args[3]
  lines, statuses, n = {}, {}, 0
  local all, i = {}, 0
  for line in io.lines(args[1]) do
    if i % nthreads == id - 1 then table.insert(lines, line) end
    table.insert(all, line)
    i = i + 1
  end
  if #lines == 0 then lines = all end  -- one line (a GET) for every thread
end
function request()
  n = n + 1
  local line = lines[(n - 1) % #lines + 1]
  local cookie, csrf, addr, body, path = line:match("^(.-)|(.-)|(.-)|(.-)|(.*)$")
  local headers = {["Accept"] = "application/json", ["Accept-Encoding"] = "gzip",
    ["X-Forwarded-For"] = addr}
  if cookie ~= "" then
    headers["Cookie"] = cookie
    headers["X-CSRFToken"] = csrf
  end
  if body ~= "" then
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = string.format("%s-%d-%d", run, id, n)
    return wrk.format("POST", path, headers, body)
  end
  return wrk.format("GET", path, headers)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
"""

# What every bench's wrk script ends with: setup() numbers each thread (its `id`) and
# registers it, done() prints one JSON line for the bench to read, every thread's
# `statuses` table merged.
WRK_REPORT_LUA = r"""
local threads = {}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "max_ms": %f, ' ..
    '"statuses": {%s}, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, table.concat(parts, ", "),
    e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("  installing wrk (Debian) …")
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "/usr/bin/wrk"


# --- the venue, its events and the crowd ------------------------------------------------


def events_create(count: int, *, seats: int, sections: int, rows: int) -> list:
    """One venue of ``seats`` (``sections`` × ``rows``) and ``count`` events on it, each on
    sale (loaded in Redis)."""
    from apps.reservations import services
    from apps.reservations.models import Event

    first = bench_event_create(seats=seats, sections=sections, rows=rows, hold_ttl_s=3600)
    events = [first]
    for i in range(1, count):
        event = Event.objects.create(
            venue=first.venue,
            name=f"{first.name} #{i + 1}",
            starts_at=first.starts_at,
            hold_ttl_seconds=first.hold_ttl_seconds,
            max_seats_per_hold=first.max_seats_per_hold,
        )
        services.event_open_sale(event=event)
        events.append(event)
    return events


def buyers_create(count: int) -> list[tuple[str, str, str]]:
    """(cookie, csrf token, address) per buyer: a session in the sessions' own store, as
    the buyer's first command would have made it, and a CSRF secret in the cookie."""
    from django.contrib.sessions.backends.cache import SessionStore
    from django.utils.crypto import get_random_string

    buyers = []
    for i in range(count):
        session = SessionStore()
        session.create()
        csrf = get_random_string(32)
        cookie = f"sessionid={session.session_key}; csrftoken={csrf}"
        buyers.append((cookie, csrf, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"))
    return buyers


def hold_lines(event_id: int, buyers: list, pairs: list[list[str]] | None = None) -> list[str]:
    """wrk's request lines (cookie|csrf|address|body|path) for POST /api/events/{id}/holds:
    with ``pairs``, picked holds (the next pair and the next buyer on every request), else
    best-available holds of 2 (the next buyer on every request)."""
    path = f"/api/events/{event_id}/holds"
    if pairs is None:
        lines = [(*buyer, '{"best": {"count": 2}}', path) for buyer in buyers]
    else:
        lines = [
            (*buyers[i % len(buyers)], json.dumps({"seats": pair}), path)
            for i, pair in enumerate(pairs)
        ]
    return ["|".join(line) for line in lines]


def request_file(lines: list[str]) -> Path:
    path = Path(tempfile.gettempdir()) / f"seats-bench-http-{RUN}-{len(lines)}-{time.time_ns()}"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the servers ------------------------------------------------------------------------


def server_start(name: str) -> Server:
    """One server configuration, on the settings `make run` uses (local, DEBUG on)."""
    if name == "daphne":
        return Server({"DJANGO_DEBUG": "true"}, name="http-daphne")
    return Server(
        {
            "DJANGO_DEBUG": "true",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # granian, nginx
            "SEATS_HTTP_PORT": str(free_port()),
            "SEATS_WS_PORT": str(free_port()),
        },
        command=[str(BIN / "honcho"), "start", "-f", "Procfile", "proxy", "web", "ws"],
        name="http-shipped",
    )


def workers_wait(server: Server, timeout: float = 60.0) -> None:
    """Every granian worker is up: the first one up would otherwise get every connection
    the proxy opens, until those are recycled."""
    workers = int(os.environ.get("SEATS_WEB_WORKERS", "2"))
    deadline = time.monotonic() + timeout
    while server.log.read_text(errors="replace").count("Started worker-") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"web workers did not start:\n{server.log.read_text()[-2000:]}")
        time.sleep(0.2)


def stack_ready(server: Server, timeout: float = 90.0) -> None:
    """The stack answers and every web worker is up; a stack that does not is stopped with
    its log kept for the reader."""
    try:
        server.wait_ready(timeout=timeout)
        workers_wait(server)  # every granian worker, or the first takes every connection
    except BaseException:
        server.stop(keep_log=True)
        raise


def warm_up(wrk: str, server: Server, connections: int) -> None:
    """Two seconds of GETs: every worker imports its URLconf and views, and the proxy
    opens its connections to all of them, before anything is measured."""
    url = f"http://127.0.0.1:{server.port}/api/events/"
    subprocess.run(
        [wrk, "-t", "1", "-c", str(connections), "-d", "2s", url],
        capture_output=True, check=True,
    )  # fmt: skip


def wrk_run(wrk: str, port: int, lines: list[str], tag: str, args: argparse.Namespace) -> dict:
    script = request_file([WRK_LUA + WRK_REPORT_LUA])
    data = request_file(lines)
    try:
        done = subprocess.run(
            [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d",
             f"{args.seconds}s", "--timeout", "5s", "-s", str(script),
             f"http://127.0.0.1:{port}", "--", str(data), str(args.threads), tag],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        script.unlink()
        data.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    return json.loads(line.removeprefix("BENCH "))


def server_measure(
    wrk: str, name: str, lines: list[str], tag: str, args: argparse.Namespace
) -> dict:
    """One wrk run (``tag`` keeps its Idempotency-Keys its own) against a fresh server
    ``name``, warmed up: what an earlier run left queued (50 snapshots of a stadium take
    seconds) must not slow this one."""
    running = server_start(name)
    try:
        running.wait_ready(timeout=60)
        if name == "shipped":
            workers_wait(running)
        warm_up(wrk, running, args.connections)
        return wrk_run(wrk, running.port, lines, tag, args)
    finally:
        running.stop()  # and with it every request still in flight


def wrk_cell(result: dict) -> str:
    """One wrk run as a table cell: req/s, p50, p99 and the count of each status."""
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))
    errors = f", socket errors {result['socket_errors']}" if result["socket_errors"] else ""
    return (
        f"{result['requests'] / result['seconds']:,.0f} req/s, p50 {result['p50_ms']:.0f} ms, "
        f"p99 {result['p99_ms']:.0f} ms ({statuses}{errors})"
    )


# --- after a hold run -------------------------------------------------------------------


def double_booking_check(event_id: int, granted: int, in_flight: int, sold: int = 0) -> str:
    """Every held seat in exactly the one hold naming it, every hold of 2 seats, and as
    many holds as 201s (plus at most one per connection: answers wrk stopped waiting for).
    An event ``sold`` seats of which were sold before the run still has exactly those
    reserved.
    """
    state, holds, problems = holds_check(event_id)
    reserved = {seat: value for seat, value in state.items() if value.startswith("r:")}
    # holds_check reports every seat outside a live hold, and a sold seat is one, as it
    # should be: drop exactly those reports (so any other wording still fails), and
    # count the sold seats instead.
    sold_reports = {f"event {event_id}: {s} is {v!r}, not a live hold" for s, v in reserved.items()}
    problems = [p for p in problems if p not in sold_reports]
    if len(reserved) != sold:
        problems.append(f"{sold} seats sold before the run, {len(reserved)} reserved")
    problems += [
        f"hold {t} has {len(h['seats'])} seats" for t, h in holds.items() if len(h["seats"]) != 2
    ]
    if not granted <= len(holds) <= granted + in_flight:
        problems.append(f"{granted} holds granted, {len(holds)} in Redis")
    verdict = "OK" if not problems else "FAILED: " + "; ".join(problems[:3])
    held = len(state) - len(reserved)
    sold_note = f", {len(reserved)} sold before the run" if sold else ""
    return f"{granted} granted, {len(holds)} holds of {held} seats in Redis{sold_note} → {verdict}"
