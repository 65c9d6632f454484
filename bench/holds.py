"""How many holds per second: the Lua hold script straight against Redis, then over HTTP.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/holds.py

(a) Script: 4-seat holds of random adjacent seats, spread over many events, from 1 and
    then 4 worker processes calling the inventory module (one Redis round trip each).
(b) HTTP: 50 concurrent clients, each a buyer with its own session and a keep-alive
    connection, against a daphne it starts on a free port; events in a throwaway
    Postgres database it creates, migrates and drops.

Each phase runs for a bounded time, then checks that no seat was sold twice: every held
seat belongs to exactly the one hold that names it, and successful holds × 4 == held
seats. Redis keys live under a random `seats-bench-…` prefix and are deleted at the end.
Prints figures; never asserts timings (README, Benchmarks). Both phases share the machine with the
load generator, so the figures are a floor, not a capacity plan.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from support import (
    BENCH_DB,
    NO_BUYER_LIMITS,
    PREFIX,
    RUN,
    Server,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    holds_check,
    percentile,
    redis_cleanup,
)

bench_env_setup()

from apps.core.redis import redis_client_get  # noqa: E402
from apps.reservations.errors import SeatsUnavailable  # noqa: E402
from apps.reservations.redis import inventory  # noqa: E402
from apps.reservations.tests.factories import seat_rows_from_keys  # noqa: E402

ROWS, SEATS_PER_ROW, GROUP = 40, 50, 4  # 2,000 seats an event, holds of 4 adjacent seats
HOLD_TTL_S = 3600  # nothing may expire mid-run: the check counts live holds
MAX_PER_HOLD = 10  # the model's default; HTTP buyers move to a new session past it


def seat_keys_for(rng: random.Random) -> list[str]:
    row = rng.randint(1, ROWS)
    start = rng.randint(1, SEATS_PER_ROW - GROUP + 1)
    return [f"S-{row}-{n}" for n in range(start, start + GROUP)]


@dataclass
class Tally:
    holds: list[tuple[int, str, list[str]]] = field(default_factory=list)  # event, token, seats
    conflicts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def merge(self, other: "Tally") -> None:
        self.elapsed = max(self.elapsed, other.elapsed)
        self.holds += other.holds
        self.conflicts += other.conflicts
        self.latencies += other.latencies
        for code, n in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + n

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


def double_booking_check(event_ids: list[int], tally: Tally) -> str:
    """Read every bench event's state back from Redis and compare with what clients got."""
    problems: list[str] = []
    held_seats = 0
    tokens_in_redis: set[str] = set()
    for event_id in event_ids:
        state, holds, event_problems = holds_check(event_id)
        problems += event_problems
        tokens_in_redis |= set(holds)
        held_seats += len(state)
    granted = [(e, s) for e, _, seats in tally.holds for s in seats]
    if len(granted) != len(set(granted)):
        problems.append(f"{len(granted) - len(set(granted))} seats were granted twice")
    if {t for _, t, _ in tally.holds} != tokens_in_redis:
        problems.append("the holds in Redis are not the holds the clients were granted")
    if len(tally.holds) * GROUP != held_seats:
        problems.append(f"{len(tally.holds)} holds × {GROUP} != {held_seats} held seats")
    verdict = "OK" if not problems else "FAILED: " + "; ".join(problems[:5])
    return (
        f"double-booking check: {len(tally.holds)} holds × {GROUP} = "
        f"{len(tally.holds) * GROUP} seats, {held_seats} held in Redis, "
        f"{len(tokens_in_redis)} hold records → {verdict}"
    )


def report(label: str, tally: Tally, seconds: float, unit: str) -> None:
    lat = sorted(tally.latencies)
    ops = len(tally.latencies)
    errors = ", ".join(f"{code} {n}" for code, n in sorted(tally.errors.items())) or "none"
    print(
        f"  {label}: {ops / seconds:,.0f} {unit}/s "
        f"({len(tally.holds) / seconds:,.0f} holds/s granted, "
        f"{tally.conflicts / seconds:,.0f}/s conflicts) over {seconds:.1f} s; "
        f"latency p50 {percentile(lat, 0.50) * 1000:.2f} ms, "
        f"p99 {percentile(lat, 0.99) * 1000:.2f} ms; other errors: {errors}"
    )


# --- (a) the hold script straight against Redis -------------------------------------------


def load_script_events(first_id: int, count: int) -> list[int]:
    prices = [(f"S-{r}-{n}", 5000) for r in range(1, ROWS + 1) for n in range(1, SEATS_PER_ROW + 1)]
    ids = list(range(first_id, first_id + count))
    for event_id in ids:
        inventory.inventory_load(
            event_id=event_id,
            seat_prices=prices,
            rows=seat_rows_from_keys([key for key, _ in prices]),
            focal=(0.0, 0.0),
            ttl_ms=HOLD_TTL_S * 1000,
            max_per_hold=MAX_PER_HOLD,
            max_hold_ms=3 * HOLD_TTL_S * 1000,
        )
    return ids


def script_worker(
    worker: int,
    event_ids: list[int],
    start: float,
    seconds: float,
    quota: int,
    out: multiprocessing.Queue,
) -> None:
    # A forked child must not share the parent's sockets: fresh client, fresh scripts.
    redis_client_get.cache_clear()
    inventory._script.cache_clear()
    rng = random.Random(worker)
    tally = Tally()
    while time.time() < start:
        time.sleep(0.001)
    deadline = start + seconds
    n = 0
    while time.time() < deadline and len(tally.holds) < quota:
        event_id = rng.choice(event_ids)
        seats = seat_keys_for(rng)
        token = f"{event_id}.w{worker}-{n}"
        n += 1
        began = time.perf_counter()
        try:
            # One holder per hold: the per-buyer cap is not what this measures.
            inventory.inventory_hold(
                event_id=event_id, seats=seats, token=token, holder=f"bench:{worker}:{n}"
            )
        except SeatsUnavailable:
            tally.conflicts += 1
        except Exception as exc:  # noqa: BLE001 - counted and printed, never hidden
            tally.error(type(exc).__name__)
        else:
            tally.holds.append((event_id, token, seats))
        tally.latencies.append(time.perf_counter() - began)
    tally.elapsed = time.time() - start
    out.put(tally)


def phase_script(processes: int, first_id: int, events: int, seconds: float, fill: float) -> None:
    event_ids = load_script_events(first_id, events)
    # Random 4-seat blocks jam at about three quarters full, after which nearly every call
    # is a cheap conflict: stop at `fill` so the figure is an on-sale's, not a sold-out's.
    quota = int(fill * events * ROWS * SEATS_PER_ROW / GROUP) // processes
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    start = time.time() + 0.5
    workers = [
        ctx.Process(target=script_worker, args=(w, event_ids, start, seconds, quota, out))
        for w in range(processes)
    ]
    for w in workers:
        w.start()
    tally = Tally()
    redis_before = redis_cpu_s()
    for _ in workers:  # drain before join: a full pipe would block the children
        tally.merge(out.get(timeout=seconds + 60))
    redis_used = redis_cpu_s() - redis_before
    for w in workers:
        w.join(timeout=10)
    report(
        f"{processes} process{'es' if processes > 1 else ''}", tally, tally.elapsed, "script calls"
    )
    if redis_used > 0:
        # Redis runs scripts on one thread: calls per CPU second of it is what one Redis
        # (one cluster shard) could do with clients enough (docs/architecture.md, "Capacity").
        calls = len(tally.latencies)
        print(
            f"    Redis CPU {redis_used:.2f} s = {redis_used / calls * 1e6:.0f} µs a call: "
            f"{calls / redis_used:,.0f} script calls per Redis core-second"
        )
    print("   ", double_booking_check(event_ids, tally))


def redis_cpu_s() -> float:
    """CPU seconds the Redis server has used so far (its INFO; shared with whatever else
    uses this Redis, so an upper bound for the bench's share)."""
    info = redis_client_get().info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- (b) over HTTP -----------------------------------------------------------------------------


def http_events_create(count: int) -> list[int]:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.reservations import services
    from apps.reservations.layouts import SeatGrid
    from apps.reservations.models import Event, PriceCategory, Section, Venue

    venue = Venue.objects.create(name=f"Bench arena {RUN}", focal_x=245.0, focal_y=-30.0)
    category = PriceCategory.objects.create(venue=venue, name="Standard", price=Decimal("50"))
    section = Section.objects.create(venue=venue, name="S", category=category)
    services.section_seats_generate(
        section=section, grid=SeatGrid(rows=ROWS, seats_per_row=SEATS_PER_ROW)
    )
    ids = []
    for i in range(count):
        event = Event.objects.create(
            venue=venue,
            name=f"Bench {RUN} #{i}",
            starts_at=timezone.now() + timedelta(days=30),
            hold_ttl_seconds=HOLD_TTL_S,
            max_seats_per_hold=MAX_PER_HOLD,
        )
        services.event_open_sale(event=event)
        ids.append(event.pk)
    return ids


class Buyer:
    """One browser: a keep-alive connection and a cookie jar (session + CSRF token)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        try:
            self.conn.request("POST", path, body=json.dumps(body), headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        try:
            return response.status, json.loads(raw) if raw else {}
        except ValueError:
            return response.status, {"code": "not-json", "body": raw[:300].decode(errors="replace")}

    def new_session(self) -> None:
        self.cookies.clear()


def http_client(
    worker: int, port: int, event_ids: list[int], start: float, seconds: float, tally: Tally
) -> None:
    rng = random.Random(1000 + worker)
    buyer = Buyer(port)
    held_by_this_buyer = 0
    while time.time() < start:
        time.sleep(0.001)
    deadline = start + seconds
    while time.time() < deadline:
        event_id = rng.choice(event_ids)
        seats = seat_keys_for(rng)
        began = time.perf_counter()
        try:
            status, body = buyer.post(f"/api/events/{event_id}/holds", {"seats": seats})
        except (OSError, http.client.HTTPException) as exc:
            tally.error(type(exc).__name__)
            continue
        tally.latencies.append(time.perf_counter() - began)
        if status == 201:
            tally.holds.append((event_id, body["hold_token"], body["seats"]))
            held_by_this_buyer += len(seats)
            if held_by_this_buyer + GROUP > MAX_PER_HOLD:
                # This buyer is at the event's cap: the next request is a new buyer.
                buyer.new_session()
                held_by_this_buyer = 0
        elif status == 409 and body.get("code") == "seats_unavailable":
            tally.conflicts += 1
        else:
            tally.error(f"{status} {body.get('code')}")
    buyer.conn.close()


def phase_http(clients: int, events: int, seconds: float) -> None:
    print(f"  creating {events} events × {ROWS * SEATS_PER_ROW:,} seats in {BENCH_DB} …")
    event_ids = http_events_create(events)
    server = Server(NO_BUYER_LIMITS)  # measure the path, not the throttle
    tally = Tally()
    try:
        server.wait_ready()
        print(
            f"  daphne: 1 process (single event loop; sync views in threads, one GIL) on "
            f"127.0.0.1:{server.port}, settings {os.environ['DJANGO_SETTINGS_MODULE']}, "
            f"DJANGO_DEBUG={server.debug}, CONN_MAX_AGE=0, no buyer limits (NO_BUYER_LIMITS)"
        )
        tallies = [Tally() for _ in range(clients)]
        start = time.time() + 0.5
        threads = [
            threading.Thread(
                target=http_client, args=(w, server.port, event_ids, start, seconds, tallies[w])
            )
            for w in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 60)
        for t in tallies:
            tally.merge(t)
        tally.elapsed = seconds
        report(f"{clients} clients", tally, seconds, "requests")
        print("   ", double_booking_check(event_ids, tally))
    finally:
        server.stop(keep_log=bool(tally.errors))


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--events", type=int, default=50, help="events for the script phase")
    parser.add_argument("--processes", default="1,4", help="script phase worker counts")
    parser.add_argument(
        "--fill", type=float, default=0.5, help="script phase: stop once this share is held"
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    parser.add_argument("--http-events", type=int, default=10, help="events for the HTTP phase")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    redis_info = redis_client_get().info("server")
    print(
        f"bench/holds.py run {RUN}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Redis {redis_info['redis_version']}, prefix {PREFIX}"
    )
    db_created = False
    try:
        print(
            f"(a) hold script straight against Redis: {args.events} events × "
            f"{ROWS * SEATS_PER_ROW:,} seats, holds of {GROUP} adjacent seats at random, "
            f"each run up to {args.seconds:.0f} s or until {args.fill:.0%} of the seats are held"
        )
        for i, n in enumerate(int(p) for p in args.processes.split(",")):
            phase_script(
                n,
                first_id=1_000_000 * (i + 1),
                events=args.events,
                seconds=args.seconds,
                fill=args.fill,
            )
        if not args.skip_http:
            print(
                f"(b) HTTP POST /api/events/{{id}}/holds, {args.clients} concurrent clients "
                f"(own session and keep-alive connection each; a new session per "
                f"{MAX_PER_HOLD // GROUP} holds, the per-buyer cap), {args.seconds:.0f} s"
            )
            bench_database_create()
            db_created = True
            phase_http(args.clients, args.http_events, args.seconds)
    finally:
        if db_created:
            bench_database_drop()
        removed = redis_cleanup()
        print(
            f"cleanup: {removed} Redis keys under {PREFIX}:* deleted"
            + (f", database {BENCH_DB} dropped" if db_created else "")
        )


if __name__ == "__main__":
    main()
