"""HTTP capacity, side by side in one run: the shipped web tier against one daphne process.

    .venv/bin/python scripts/backing_services.py exec -- .venv/bin/python bench/http_capacity.py

Creates a 50,000-seat stadium (50 sections × 40 rows × 25 seats) in a throwaway database
and one event on it per measured command and server (so every run starts from free
seats), and a crowd of buyers, each with a real session (cookie) and CSRF token, and an
address of their own (X-Forwarded-For). Then, for each server configuration in turn:

    shipped   the Procfile's proxy, web and ws processes under honcho, as `make run`
              starts them (nginx → granian WSGI workers; daphne for /ws/)
    daphne    one daphne process serving everything (the Procfile before this bench)

it drives each request below with `wrk` (Debian's; installed if missing) for --seconds,
--connections at once, and prints req/s, p50, p99 and the count of each status:

    GET  /api/events/{id}            GET /api/events/{id}/seats   GET /api/stats/event/{id}
    POST /api/events/{id}/holds      {"seats": [2 adjacent seats]}   (picked: a new pair
                                     and the next buyer on every request)
    POST /api/events/{id}/holds      {"best": {"count": 2}}

Every command carries an Idempotency-Key, as the seat map app sends. After each hold run,
the double-booking check reads the event back from Redis: every held seat belongs to
exactly the one live hold that lists it, and 201s × 2 == held seats.

Both servers use the settings `make run` uses (config.settings.local); nothing else runs
(no relay or consumers: their outboxes simply grow), and wrk shares the 2 cores. Prints
figures; asserts none.
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

from support import (
    BENCH_DB,
    PREFIX,
    RUN,
    Server,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_row_seats,
    free_port,
    holds_check,
    redis_cleanup,
)

bench_env_setup()

from django.contrib.sessions.backends.cache import SessionStore  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

SEATS, SECTIONS, ROWS = 50_000, 50, 40
BIN = Path(sys.executable).parent

# One wrk Lua script for every request kind. Each thread reads its share of the prepared
# request lines ("cookie|csrf|address|body|path"), sends the next one on every request,
# and counts statuses; done() prints one JSON line for the bench to read.
WRK_LUA = r"""
local threads = {}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end
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
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, ' ..
    '"statuses": {%s}, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, table.concat(parts, ", "),
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


def events_create(count: int) -> list:
    """One 50,000-seat venue and ``count`` events on it, each on sale (loaded in Redis)."""
    from support import bench_event_create

    from apps.reservations import services
    from apps.reservations.models import Event

    first = bench_event_create(seats=SEATS, sections=SECTIONS, rows=ROWS, hold_ttl_s=3600)
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
    buyers = []
    for i in range(count):
        session = SessionStore()
        session.create()
        csrf = get_random_string(32)
        cookie = f"sessionid={session.session_key}; csrftoken={csrf}"
        buyers.append((cookie, csrf, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"))
    return buyers


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


def warm_up(wrk: str, server: Server, connections: int) -> None:
    """Two seconds of GETs: every worker imports its URLconf and views, and the proxy
    opens its connections to all of them, before anything is measured."""
    url = f"http://127.0.0.1:{server.port}/api/events/"
    subprocess.run(
        [wrk, "-t", "1", "-c", str(connections), "-d", "2s", url],
        capture_output=True, check=True,
    )  # fmt: skip


def wrk_run(wrk: str, port: int, lines: list[str], tag: str, args: argparse.Namespace) -> dict:
    script = request_file([WRK_LUA])
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


def double_booking_check(event_id: int, granted: int, in_flight: int) -> str:
    """Every held seat in exactly the one hold naming it, every hold of 2 seats, and as
    many holds as 201s (plus at most one per connection: answers wrk stopped waiting for).
    """
    state, holds, problems = holds_check(event_id)
    problems += [
        f"hold {t} has {len(h['seats'])} seats" for t, h in holds.items() if len(h["seats"]) != 2
    ]
    if not granted <= len(holds) <= granted + in_flight:
        problems.append(f"{granted} holds granted, {len(holds)} in Redis")
    verdict = "OK" if not problems else "FAILED: " + "; ".join(problems[:3])
    return f"{granted} granted, {len(holds)} holds of {len(state)} seats in Redis → {verdict}"


LABELS = {
    "event": "GET /api/events/{id}",
    "seats": "GET /api/events/{id}/seats",
    "stats": "GET /api/stats/event/{id}",
    "hold": "POST hold (picked)",
    "best": "POST hold (best)",
}


def request_lines(kind: str, reads_event, best_event, pairs, buyers) -> list[str]:  # type: ignore[no-untyped-def]
    """wrk's request lines for one row: cookie|csrf|address|body|path."""
    anonymous = ("", "", "10.255.0.1")
    reads = f"/api/events/{reads_event.pk}"
    if kind == "event":
        lines = [(*anonymous, "", reads)]
    elif kind == "seats":
        lines = [(*anonymous, "", f"{reads}/seats")]
    elif kind == "stats":
        lines = [(*anonymous, "", f"/api/stats/event/{reads_event.pk}")]
    elif kind == "hold":  # the next pair and the next buyer on every request
        lines = [
            (*buyers[i % len(buyers)], json.dumps({"seats": pair}), f"{reads}/holds")
            for i, pair in enumerate(pairs)
        ]
    else:
        best = f"/api/events/{best_event.pk}/holds"
        lines = [(*buyer, '{"best": {"count": 2}}', best) for buyer in buyers]
    return ["|".join(line) for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--buyers", type=int, default=4000)
    parser.add_argument("--servers", default="shipped,daphne")
    parser.add_argument(
        "--requests", default="event,seats,stats,hold,best", help="which rows to measure"
    )
    args = parser.parse_args()
    servers = args.servers.split(",")
    kinds = args.requests.split(",")
    wrk = wrk_path()
    print(
        f"bench/http_capacity.py run {RUN}: {os.cpu_count()} cores, "
        f"{args.connections} connections × {args.seconds} s per row, wrk -t {args.threads}, "
        f"{args.buyers:,} buyers, settings {os.environ['DJANGO_SETTINGS_MODULE']}; "
        f"database {BENCH_DB}, prefix {PREFIX}"
    )
    bench_database_create()
    try:
        # Per server: one event for the reads and the picked holds, one for best holds.
        events = events_create(2 * len(servers))
        pairs = [row[i : i + 2] for row in bench_row_seats(events[0]) for i in range(0, 24, 2)]
        buyers = buyers_create(args.buyers)
        results: dict[tuple[str, str], dict] = {}
        checks: list[str] = []
        # Row by row, each server in turn: both see the machine in the same state (a
        # shared machine slows down over minutes of load).
        for kind in kinds:
            for index, server in enumerate(servers):
                reads_event, best_event = events[2 * index], events[2 * index + 1]
                lines = request_lines(kind, reads_event, best_event, pairs, buyers)
                # A fresh server per row: what one row left queued (50 snapshots of a
                # stadium take seconds) must not slow the next.
                running = server_start(server)
                try:
                    running.wait_ready(timeout=60)
                    if server == "shipped":
                        workers_wait(running)
                    warm_up(wrk, running, args.connections)
                    tag = f"{RUN}-{server}-{kind}"  # Idempotency-Keys unique to this row
                    result = wrk_run(wrk, running.port, lines, tag, args)
                finally:
                    running.stop()  # and with it every request still in flight
                results[(kind, server)] = result
                if kind in ("hold", "best"):
                    event = reads_event if kind == "hold" else best_event
                    granted = result["statuses"].get("201", 0)
                    check = double_booking_check(event.pk, granted, args.connections)
                    checks.append(f"  {server} {LABELS[kind]}: {check}")
        print()
        print("| request | " + " | ".join(servers) + " |")
        print("| --- |" + " --- |" * len(servers))
        for kind in kinds:
            cells = []
            for server in servers:
                r = results[(kind, server)]
                statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
                errors = f", socket errors {r['socket_errors']}" if r["socket_errors"] else ""
                cells.append(
                    f"{r['requests'] / r['seconds']:,.0f} req/s, p50 {r['p50_ms']:.0f} ms, "
                    f"p99 {r['p99_ms']:.0f} ms ({statuses}{errors})"
                )
            print(f"| {LABELS[kind]} | " + " | ".join(cells) + " |")
        print()
        print("double-booking check:")
        print("\n".join(checks) or "  (no hold rows measured)")
    finally:
        bench_database_drop()
        print(f"cleanup: {redis_cleanup()} Redis keys under {PREFIX}:* deleted, {BENCH_DB} dropped")


if __name__ == "__main__":
    main()
