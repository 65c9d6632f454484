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
import os

from support import (
    BENCH_DB,
    PREFIX,
    RUN,
    bench_database_create,
    bench_database_drop,
    bench_env_setup,
    bench_row_seats,
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

SEATS, SECTIONS, ROWS = 50_000, 50, 40


LABELS = {
    "event": "GET /api/events/{id}",
    "seats": "GET /api/events/{id}/seats",
    "stats": "GET /api/stats/event/{id}",
    "hold": "POST hold (picked)",
    "best": "POST hold (best)",
}


def request_lines(kind: str, reads_event, best_event, pairs, buyers) -> list[str]:  # type: ignore[no-untyped-def]
    """wrk's request lines for one row: cookie|csrf|address|body|path."""
    if kind == "hold":
        return hold_lines(reads_event.pk, buyers, pairs)
    if kind == "best":
        return hold_lines(best_event.pk, buyers)
    anonymous = ("", "", "10.255.0.1")
    reads = f"/api/events/{reads_event.pk}"
    if kind == "event":
        lines = [(*anonymous, "", reads)]
    elif kind == "seats":
        lines = [(*anonymous, "", f"{reads}/seats")]
    else:
        lines = [(*anonymous, "", f"/api/stats/event/{reads_event.pk}")]
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
        events = events_create(2 * len(servers), seats=SEATS, sections=SECTIONS, rows=ROWS)
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
                # A fresh server per row: what one row left queued must not slow the next.
                tag = f"{RUN}-{server}-{kind}"  # Idempotency-Keys unique to this row
                result = server_measure(wrk, server, lines, tag, args)
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
            cells = [wrk_cell(results[(kind, server)]) for server in servers]
            print(f"| {LABELS[kind]} | " + " | ".join(cells) + " |")
        print()
        print("double-booking check:")
        print("\n".join(checks) or "  (no hold rows measured)")
    finally:
        bench_database_drop()
        print(f"cleanup: {redis_cleanup()} Redis keys under {PREFIX}:* deleted, {BENCH_DB} dropped")


if __name__ == "__main__":
    main()
