"""The seat map snapshot API: latency and response size for a 50,000-seat event.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/snapshot.py

A throwaway Postgres database (created, migrated, dropped) gets one event with ``--seats``
seats (default 50,000: 20 sections × 50 rows × 50 seats), put on sale; then ``--taken``
(default 30%) of the seats are taken through the write side in a realistic mix: holds of
1-6 adjacent seats, of which about half are reserved and the rest stay held, plus staff
blocks. Then:

(a) ``--requests`` (default 50) sequential GETs of ``/api/events/{id}/seats`` over one
    keep-alive connection to a daphne it starts on a free port, without and with
    ``Accept-Encoding: gzip`` (after one untimed warm-up request, which fills the
    per-process seat cache): p50/p99/max latency and response bytes;
(b) the selector alone in-process (``seat_map_get``), and the Redis snapshot read under it.

Redis keys live under a random ``seats-bench-…`` prefix and are deleted at the end. Prints
figures; never asserts timings (README, Benchmarks).
"""

import argparse
import gzip
import http.client
import json
import os
import platform
import random
import time

from support import (
    BENCH_DB,
    PREFIX,
    RUN,
    Server,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_event_create,
    bench_row_seats,
    percentile,
    redis_cleanup,
)

bench_env_setup(defaults={"DJANGO_DEBUG": "false"})

from apps.core.redis import redis_client_get  # noqa: E402

SECTIONS, ROWS = 20, 50
HOLD_TTL_S = 3600  # nothing expires mid-run


def latency_line(label: str, seconds: list[float]) -> str:
    lat = sorted(seconds)
    return (
        f"{label}: p50 {percentile(lat, 0.50) * 1000:.1f} ms, "
        f"p99 {percentile(lat, 0.99) * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms "
        f"(n={len(lat)})"
    )


# --- setup -------------------------------------------------------------------------------


def seats_take(event, share: float, rng: random.Random) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Hold, reserve and block until ``share`` of the seats are not free."""
    from apps.reservations import services

    row_seats = bench_row_seats(event)
    total = sum(len(r) for r in row_seats)
    free = {key for seats in row_seats for key in seats}
    goal = int(share * total)
    counts = {"held": 0, "reserved": 0, "blocked": 0}
    buyer = 0
    while total - len(free) < goal:
        seats_in_row = rng.choice(row_seats)
        count = rng.choice((1, 2, 2, 2, 3, 4, 4, 6))
        start = rng.randrange(0, max(1, len(seats_in_row) - count + 1))
        seats = seats_in_row[start : start + count]
        if not all(s in free for s in seats):
            continue
        free -= set(seats)
        roll = rng.random()
        if roll < 0.05:  # staff block: whole runs of seats, production holds or ADA spots
            services.seats_block(event=event, seats=seats)
            counts["blocked"] += len(seats)
            continue
        buyer += 1
        hold = services.hold_create(event_id=event.pk, holder=f"user:{buyer}", seats=seats)
        if roll < 0.55:
            services.hold_reserve(token=hold.token, holder=f"user:{buyer}")
            counts["reserved"] += len(seats)
        else:
            counts["held"] += len(seats)
    return counts


# --- (a) over HTTP -------------------------------------------------------------------------


def http_gets(port: int, path: str, n: int, *, gzip_ok: bool) -> tuple[list[float], int, bytes]:
    """``n`` timed GETs (after one warm-up) on one keep-alive connection."""
    headers = {"Accept": "application/json"}
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    body = b""
    encoding = None
    try:
        for i in range(n + 1):
            began = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - began
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
            encoding = response.headers.get("Content-Encoding")
            if i:  # the first request warms the seat cache of the server process
                latencies.append(elapsed)
    finally:
        conn.close()
    if gzip_ok and encoding != "gzip":
        print(f"    note: asked for gzip, got Content-Encoding {encoding!r}")
    return latencies, len(body), body


def phase_http(event_id: int, n: int) -> None:
    server = Server()
    failed = True
    try:
        server.wait_ready()
        print(
            f"(a) HTTP GET /api/events/{event_id}/seats, {n} sequential requests on one "
            f"keep-alive connection, daphne (1 process) on 127.0.0.1:{server.port}, "
            f"DJANGO_DEBUG={server.debug}"
        )
        path = f"/api/events/{event_id}/seats"
        plain, plain_bytes, raw = http_gets(server.port, path, n, gzip_ok=False)
        print(f"    {latency_line('identity', plain)}; {plain_bytes:,} bytes")
        zipped, zipped_bytes, body = http_gets(server.port, path, n, gzip_ok=True)
        print(
            f"    {latency_line('gzip    ', zipped)}; {zipped_bytes:,} bytes on the wire "
            f"({plain_bytes / zipped_bytes:.1f}× smaller)"
        )
        # Same document both ways (the seq cannot move: nothing writes during the run).
        if gzip.decompress(body) != raw:
            print("    note: the gzip body does not decompress to the identity body")
        seat_map = json.loads(raw)
        seats = sum(len(r["states"]) for s in seat_map["sections"] for r in s["rows"])
        print(f"    document: {seats:,} seats, seq {seat_map['seq']}")
        failed = False
    finally:
        server.stop(keep_log=failed)


# --- (b) in-process ------------------------------------------------------------------------


def phase_selector(event_id: int, n: int) -> None:
    from apps.reservations.selectors import inventory_snapshot_get
    from apps.seatstate.selectors import seat_map_get

    seat_map_get(event_id=event_id, buyer=None)  # fills the per-process seat cache
    selector, snapshot, render = [], [], []
    for _ in range(n):
        began = time.perf_counter()
        seat_map = seat_map_get(event_id=event_id, buyer=None)
        selector.append(time.perf_counter() - began)
        began = time.perf_counter()
        json.dumps({"seq": seat_map.seq, "sections": seat_map.sections}, separators=(",", ":"))
        render.append(time.perf_counter() - began)
        began = time.perf_counter()
        inventory_snapshot_get(event_id=event_id)
        snapshot.append(time.perf_counter() - began)
    print(f"(b) in-process, {n} calls each, after one warm-up call:")
    print("   ", latency_line("seat_map_get (Redis snapshot + rows)", selector))
    print("   ", latency_line("  of which the Redis snapshot read   ", snapshot))
    print("   ", latency_line("json.dumps of the sections (no DRF)  ", render))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seats", type=int, default=50_000)
    parser.add_argument("--taken", type=float, default=0.30, help="share held/reserved/blocked")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    redis_info = redis_client_get().info("server")
    print(
        f"bench/snapshot.py run {RUN}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Redis {redis_info['redis_version']}, prefix {PREFIX}"
    )
    db_created = False
    try:
        bench_database_create()
        db_created = True
        began = time.perf_counter()
        event = bench_event_create(
            seats=args.seats, sections=SECTIONS, rows=ROWS, hold_ttl_s=HOLD_TTL_S
        )
        seat_count = event.venue.seats.count()
        print(
            f"  event: {seat_count:,} seats created and on sale in "
            f"{time.perf_counter() - began:.1f} s"
        )
        began = time.perf_counter()
        counts = seats_take(event, args.taken, random.Random(args.seed))
        print(
            f"  taken through the write side in {time.perf_counter() - began:.1f} s: "
            f"{counts['reserved']:,} reserved, {counts['held']:,} held, "
            f"{counts['blocked']:,} blocked "
            f"({sum(counts.values()) / seat_count:.0%} of the seats)"
        )
        phase_http(event.pk, args.requests)
        phase_selector(event.pk, args.requests)
    finally:
        notes = [f"{redis_cleanup()} Redis keys under {PREFIX}:* deleted"]
        if db_created:
            bench_database_drop()
            notes.append(f"database {BENCH_DB} dropped")
        print("cleanup: " + "; ".join(notes))


if __name__ == "__main__":
    main()
