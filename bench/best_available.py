"""Best-available holds beside picked holds, straight against Redis and over HTTP.

    .venv/bin/python scripts/backing_services.py exec -- .venv/bin/python bench/best_available.py

Creates, in a throwaway database, one stadium per --sizes (default 50,000 and 100,000
seats: 50 and 100 sections × 40 rows × 25 seats, a section per 1,000 seats) and on it
one event per measurement, so that no measurement eats another's seats. Each event is

    fresh        every seat free
    fragmented   half its seats sold at random first, through the write side: holds of
                 up to 10 random free seats, each reserved at once, one after another

and is measured in one mode:

    redis   services.hold_create in this process, --calls holds one after another (a
            count, never a time, so seats cannot run out), each for a new holder, after
            one unmeasured call: holds/s, and each call's p50, p99 and max
    http    the shipped web tier (the Procfile's proxy, web and ws under honcho: nginx →
            granian workers), a fresh one per run, warmed up, then `wrk` for --seconds
            with --connections, each request from a buyer with a real session, an
            address of their own and an Idempotency-Key, as bench/http_capacity.py
            sends them: req/s, p50, p99 and the count of each status

for one kind of hold, picked and best in turn, so both see the machine in the same state:

    picked  POST /api/events/{id}/holds {"seats": [2 adjacent seats free in the event]}
            (a new pair on every call)
    best    POST /api/events/{id}/holds {"best": {"count": 2}}

One table puts them side by side, with best's rate as a share of picked's: the aim is
best-available at ≥ 80 % of the picked rate on the same server, and a script p99 under
2 ms at 100,000 seats. After each run the double-booking check reads the event back from
Redis: every held seat in exactly the one live hold that lists it, every hold of 2
seats, as many holds as were granted, and the seats sold before the run still reserved.

Settings as `make run` uses (config.settings.local); nothing else runs (no relay or
consumers: their outboxes simply grow), and wrk shares the machine. Prints figures;
asserts none.
"""

import argparse
import os
import random
import time
from collections import Counter
from collections.abc import Callable

from support import (
    BENCH_DB,
    PREFIX,
    RUN,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_row_seats,
    percentile,
    redis_cleanup,
)
from wrkload import (
    buyers_create,
    double_booking_check,
    events_create,
    hold_lines,
    server_measure,
    wrk_cell,
    wrk_path,
)

bench_env_setup()

from apps.core.exceptions import DomainError  # noqa: E402
from apps.reservations import services  # noqa: E402
from apps.reservations.models import Event  # noqa: E402
from apps.reservations.redis import inventory  # noqa: E402

ROWS, SEATS_PER_ROW = 40, 25
SEATS_PER_SECTION = ROWS * SEATS_PER_ROW
STATES = ("fresh", "fragmented")
MODES = ("redis", "http")
KINDS = ("picked", "best")
BEST = services.BestRequest(count=2)


# --- the stadium and its events ---------------------------------------------------------


def stadium_create(size: int, count: int) -> list[Event]:
    """A stadium of ``size`` seats and ``count`` events on it, each on sale."""
    started = time.perf_counter()
    events = events_create(count, seats=size, sections=size // SEATS_PER_SECTION, rows=ROWS)
    print(
        f"{size:,} seats: stadium and {count} events on sale in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return events


def fragment(event: Event, seats: list[str]) -> int:
    """Sell half the event's seats at random, as buyers would: holds of up to the event's
    per-hold maximum of random free seats, each reserved at once. Returns how many."""
    started = time.perf_counter()
    sold = random.Random(event.pk).sample(seats, len(seats) // 2)
    step = event.max_seats_per_hold
    for i in range(0, len(sold), step):
        holder = f"bench-sold-{i // step}"
        hold = services.hold_create(event_id=event.pk, holder=holder, seats=sold[i : i + step])
        services.hold_reserve(token=hold.token, holder=holder)
    print(
        f"  event {event.pk} fragmented: {len(sold):,} seats sold in "
        f"{-(-len(sold) // step):,} holds in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return len(sold)


def free_pairs(event_id: int, rows: list[list[str]]) -> list[list[str]]:
    """Adjacent seats both free in the event, row by row, no seat in two pairs (on a
    fresh event seats 1-2, 3-4, … of every row, as bench/http_capacity.py picks them)."""
    taken = set(inventory.inventory_snapshot(event_id=event_id).taken())
    pairs = []
    for row in rows:
        i = 0
        while i + 1 < len(row):
            if row[i] in taken or row[i + 1] in taken:
                i += 1
            else:
                pairs.append(row[i : i + 2])
                i += 2
    return pairs


# --- the measurements -------------------------------------------------------------------


def hold_requests(kind: str, pairs: list[list[str]], count: int) -> list[dict]:
    """hold_create's arguments for ``count`` holds of ``kind``: a new pair every time."""
    if kind == "best":
        return [{"best": BEST}] * count
    if len(pairs) < count:
        raise SystemExit(f"{len(pairs):,} free pairs for {count:,} picked holds: lower --calls")
    return [{"seats": pair} for pair in pairs[:count]]


def redis_measure(event_id: int, requests: list[dict]) -> tuple[float, str, int]:
    """The holds one after another in this process, each for a new holder; the first
    unmeasured (it fills the process's caches, as a server's first request does).
    Returns holds/s, the table cell and how many holds were granted."""
    first, *measured = requests
    services.hold_create(event_id=event_id, holder="bench-first", **first)
    latencies, refused = [], Counter()
    began = time.perf_counter()
    for i, request in enumerate(measured):
        start = time.perf_counter()
        try:
            services.hold_create(event_id=event_id, holder=f"bench-{i}", **request)
        except DomainError as exc:  # a refusal: counted and printed, never hidden
            refused[type(exc).__name__] += 1
        latencies.append(time.perf_counter() - start)
    rate = len(measured) / (time.perf_counter() - began)
    ms = sorted(x * 1000 for x in latencies)
    refusals = "".join(f", {name}: {n}" for name, n in sorted(refused.items()))
    cell = (
        f"{rate:,.0f} holds/s, p50 {percentile(ms, 0.50):.2f} ms, "
        f"p99 {percentile(ms, 0.99):.2f} ms, max {ms[-1]:.2f} ms{refusals}"
    )
    return rate, cell, len(requests) - refused.total()


def measure(
    mode: str,
    kind: str,
    event: Event,
    sold: int,
    rows: list[list[str]],
    args: argparse.Namespace,
    wrk: str,
    buyers: list[tuple[str, str, str]],
) -> tuple[float, str, str]:
    """One (mode, kind) on its own event: (rate, table cell, double-booking check)."""
    print(f"  event {event.pk}: {mode} {kind} …", flush=True)
    pairs = free_pairs(event.pk, rows) if kind == "picked" else []
    if mode == "redis":
        requests = hold_requests(kind, pairs, args.calls + 1)
        rate, cell, granted = redis_measure(event.pk, requests)
        return rate, cell, double_booking_check(event.pk, granted, 0, sold)
    lines = hold_lines(event.pk, buyers, pairs if kind == "picked" else None)
    tag = f"{RUN}-{event.pk}"  # Idempotency-Keys unique to this run
    result = server_measure(wrk, "shipped", lines, tag, args)
    granted = result["statuses"].get("201", 0)
    check = double_booking_check(event.pk, granted, args.connections, sold)
    return result["requests"] / result["seconds"], wrk_cell(result), check


def size_measure(
    size: int, args: argparse.Namespace, wrk: str, buyers: list[tuple[str, str, str]]
) -> tuple[list[str], list[str]]:
    """Every (state, mode) row of one stadium: its table rows and its checks."""
    combos = [(state, mode) for state in args.states for mode in args.modes]
    events = stadium_create(size, len(combos) * len(KINDS))
    rows = bench_row_seats(events[0])
    seats = [seat for row in rows for seat in row]
    table, checks = [], []
    for index, (state, mode) in enumerate(combos):
        pair = events[len(KINDS) * index : len(KINDS) * (index + 1)]
        sold = [fragment(event, seats) if state == "fragmented" else 0 for event in pair]
        # Picked, then best at once: both see the machine in the same state.
        results = {
            kind: measure(mode, kind, event, n, rows, args, wrk, buyers)
            for kind, event, n in zip(KINDS, pair, sold, strict=True)
        }
        (picked_rate, picked, _), (best_rate, best, _) = results["picked"], results["best"]
        ratio = f"{best_rate / picked_rate:.0%}" if picked_rate else "–"
        table.append(f"| {size:,} | {state} | {mode} | {picked} | {best} | {ratio} |")
        checks += [f"  {size:,} {state} {mode} {kind}: {r[2]}" for kind, r in results.items()]
    return table, checks


# --- main -------------------------------------------------------------------------------


def sizes_parse(text: str) -> list[int]:
    sizes = [int(size) for size in text.split(",")]
    if any(size < SEATS_PER_SECTION or size % SEATS_PER_SECTION for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes are multiples of {SEATS_PER_SECTION:,} seats")
    return sizes


def choices_parse(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        unknown = set(text.split(",")) - set(choices)
        if unknown:
            raise argparse.ArgumentTypeError(f"{', '.join(sorted(unknown))}: not in {choices}")
        return text.split(",")

    return parse


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=sizes_parse, default=[50_000, 100_000], help="seats")
    parser.add_argument("--states", type=choices_parse(STATES), default=list(STATES))
    parser.add_argument("--modes", type=choices_parse(MODES), default=list(MODES))
    parser.add_argument("--calls", type=int, default=3000, help="holds per redis run")
    parser.add_argument("--seconds", type=int, default=8, help="per http run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--buyers", type=int, default=4000)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    http = "http" in args.modes
    wrk = wrk_path() if http else ""
    print(
        f"bench/best_available.py run {RUN}: {os.cpu_count()} cores, "
        f"{args.calls:,} calls per redis run, {args.connections} connections × "
        f"{args.seconds} s per http run, wrk -t {args.threads}, {args.buyers:,} buyers, "
        f"settings {os.environ['DJANGO_SETTINGS_MODULE']}; "
        f"database {BENCH_DB}, prefix {PREFIX}"
    )
    bench_database_create()
    try:
        buyers = buyers_create(args.buyers) if http else []
        table, checks = [], []
        for size in args.sizes:
            size_table, size_checks = size_measure(size, args, wrk, buyers)
            table += size_table
            checks += size_checks
        print()
        print("| seats | state | mode | picked | best | best/picked |")
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(table))
        print()
        print("double-booking check:")
        print("\n".join(checks))
    finally:
        bench_database_drop()
        print(f"cleanup: {redis_cleanup()} Redis keys under {PREFIX}:* deleted, {BENCH_DB} dropped")


if __name__ == "__main__":
    main()
