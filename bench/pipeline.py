"""Events per second through each projection consumer, from a topic filled beforehand.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python bench/pipeline.py

1. A throwaway Postgres database (created, migrated, dropped) gets one event with
   ``--seats`` seats (default 20,000: 10 sections × 40 rows × 50 seats).
2. Realistic traffic through the real write side (services → Lua scripts → outbox): buyers
   hold 1-4 adjacent seats, then reserve (55%), release all or part (35%) or walk away
   (10%, the hold stays live); staff block a few seats and cancel some reservations. It stops
   at ``--events`` domain events (default 24,000) or when seats run out.
3. The outbox relay (``outbox_relay_once``) publishes everything to a bench topic of its own
   (``seat-events-bench-<run>``); its rate is printed too, and at the end the relay's trim
   of the outbox (entries every projection applied), timed.
4. Each registered projection consumer (``persistence``, and ``stats`` once an app registers
   it; ``--consumers`` picks some) runs ``run()`` in a new consumer group from the beginning
   of the topic until it has processed every message. Printed: the whole run (group join
   included) and the steady rate (first batch to last), batch count, the CPU per event of
   this process and of the bench database's Postgres backends (steadier than the rates on
   a busy machine), and a spot check of the projection. The header says whether
   kafka-python checks CRCs with the ``crc32c`` package or in (slow) pure Python.

Redis keys live under a random ``seats-bench-…`` prefix and are deleted at the end, with the
database and the bench topics. Prints figures; never asserts timings (README, Benchmarks).
"""

import argparse
import os
import platform
import random
import threading
import time

from support import (
    RUN,
    SEAT_TOPIC,
    STATS_TOPIC,
    bench_cleanup,
    bench_database_create,
    bench_env_setup,
    bench_event_create,
    bench_row_seats,
    percentile,
)

# Before Django reads its settings: the topics are this run's own, like keys and database.
bench_env_setup(
    KAFKA_TOPIC_SEAT_EVENTS=SEAT_TOPIC,
    KAFKA_TOPIC_STATS_EVENTS=STATS_TOPIC,
    defaults={"DJANGO_DEBUG": "false"},  # no per-query log growing in memory
)

from django.conf import settings  # noqa: E402

from apps.core.redis import redis_client_get  # noqa: E402

BENCHED = ("persistence", "stats")  # projections; the gateway only forwards to WebSockets
SECTIONS, ROWS = 10, 40
HOLD_TTL_S = 3600  # nothing expires mid-run


# --- traffic through the real write side -----------------------------------------------


def traffic(event, target_events: int, rng: random.Random) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Holds, reserves, releases, blocks and cancels until ``target_events`` domain events."""
    from apps.reservations import services
    from apps.reservations.errors import SeatsUnavailable

    row_seats = bench_row_seats(event)
    free = {key for seats in row_seats for key in seats}
    counts = {"holds": 0, "reserves": 0, "releases": 0, "blocks": 0, "cancels": 0, "conflicts": 0}
    reservations: list[str] = []
    seq = 0
    buyer = 0

    def adjacent(count: int) -> list[str] | None:
        for _ in range(50):
            seats = rng.choice(row_seats)
            start = rng.randrange(0, max(1, len(seats) - count + 1))
            block = seats[start : start + count]
            if len(block) == count and all(s in free for s in block):
                return block
        return None

    while seq < target_events and len(free) > 50:
        roll = rng.random()
        if roll < 0.01:  # staff: block a handful of seats
            seats = adjacent(rng.randint(2, 6))
            if seats:
                seq = services.seats_block(event=event, seats=seats).seq
                free -= set(seats)
                counts["blocks"] += 1
            continue
        if roll < 0.03 and reservations:  # staff: cancel a reservation, seats on sale again
            rid = reservations.pop(rng.randrange(len(reservations)))
            seq = services.reservation_cancel(event_id=event.pk, reservation_id=rid).seq
            counts["cancels"] += 1
            continue
        seats = adjacent(rng.choice((1, 2, 2, 2, 3, 4, 4)))
        if seats is None:
            continue
        buyer += 1
        holder = f"user:{buyer}"
        try:
            hold = services.hold_create(event_id=event.pk, holder=holder, seats=seats)
        except SeatsUnavailable:
            counts["conflicts"] += 1
            continue
        seq = hold.seq
        free -= set(seats)
        counts["holds"] += 1
        fate = rng.random()
        if fate < 0.55:
            confirmation = services.hold_reserve(token=hold.token, holder=holder)
            seq = confirmation.seq
            reservations.append(confirmation.reservation_id)
            counts["reserves"] += 1
        elif fate < 0.90:
            some = seats[: rng.randint(1, len(seats))]
            released = services.hold_release(token=hold.token, holder=holder, seats=some)
            seq = released.seq
            free |= set(released.seats)
            counts["releases"] += 1
        # else: the buyer walks away; the hold stays live (no expiry during the run)
    counts["seq"] = seq
    return counts


def relay_all() -> tuple[int, float]:
    from apps.core.kafka import kafka_producer_create, topics_ensure
    from apps.core.tests.pipeline import outbox_relay_once

    topics_ensure([SEAT_TOPIC, STATS_TOPIC])
    producer = kafka_producer_create()
    began = time.perf_counter()
    try:
        published = outbox_relay_once(producer=producer)
    finally:
        producer.close(timeout=10)
    return published, time.perf_counter() - began


def outbox_trim_applied_timed(event_id: int) -> tuple[int, float]:
    """The relay's trim of what every projection applied (docs/architecture.md, "The
    outbox keeps what is not applied yet"), timed: the cursors' query and the Lua walks."""
    from apps.core.projections import projections_applied
    from apps.reservations.outbox import outbox_trim_applied

    began = time.perf_counter()
    dropped = outbox_trim_applied(projections_applied([event_id]))
    return dropped, time.perf_counter() - began


# --- consumers -----------------------------------------------------------------------------


def consumer_bench(name: str, total: int, timeout_s: float) -> None:
    from apps.core.workers import worker_class_get

    consumer = worker_class_get(name)(group_id=f"bench-{name}-{RUN}")
    if SEAT_TOPIC not in consumer.topics:
        print(f"  {name}: reads {consumer.topics}, not the seat topic; skipped")
        return
    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    seen = 0
    batches: list[tuple[float, float, int]] = []  # start, end, records
    dead = duplicates = 0
    real_process = consumer.batch_process

    def batch_process_timed(records):  # type: ignore[no-untyped-def]
        nonlocal seen, dead, duplicates
        began = time.perf_counter()
        result = real_process(records)
        batches.append((began, time.perf_counter(), len(records)))
        seen += len(records)
        dead += result.dead_letters
        duplicates += result.duplicates
        if seen >= total:
            stop.set()  # run() commits this batch's offsets, then returns
        return result

    consumer.batch_process = batch_process_timed  # type: ignore[method-assign]
    timer.start()
    postgres_before, cpu_before = postgres_cpu_s(), time.process_time()
    began = time.perf_counter()
    try:
        consumer.run(stop)
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_before
    postgres = postgres_cpu_delta(postgres_before, postgres_cpu_s())
    if not batches:
        print(f"  {name}: no batch within {timeout_s:.0f} s")
        return
    first, last = batches[0][0], batches[-1][1]
    steady = last - first
    sizes = sorted(n for _, _, n in batches)
    per_batch = sorted(end - start for start, end, _ in batches)
    timed_out = "" if seen >= total else f" — STOPPED at the {timeout_s:.0f} s bound"
    print(
        f"  {name}: {seen:,}/{total:,} events in {elapsed:.2f} s = {seen / elapsed:,.0f} events/s "
        f"overall (group join + first fetch {first - began:.2f} s); steady "
        f"{seen / steady if steady else float('nan'):,.0f} events/s over {steady:.2f} s{timed_out}"
    )
    print(
        f"    {len(batches)} batches (median {percentile(sizes, 0.5)} records), transaction "
        f"time p50 {percentile(per_batch, 0.5) * 1000:.0f} ms, max {per_batch[-1] * 1000:.0f} ms; "
        f"{duplicates} duplicates, {dead} dead letters"
    )
    # CPU per event moves far less than the rates when other work shares the machine.
    print(
        f"    CPU (group join included): this process {cpu:.2f} s = {cpu / seen * 1e6:.0f} µs/event"
        + (
            f"; the database's Postgres backends {postgres:.2f} s = "
            f"{postgres / seen * 1e6:.0f} µs/event"
            if postgres is not None
            else ""
        )
    )


def postgres_cpu_s() -> dict[int, float] | None:
    """CPU seconds used so far by each backend of the bench database, read from /proc (a
    Postgres on this machine, Linux); None where that cannot be read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime+stime
    return used


def postgres_cpu_delta(
    before: dict[int, float] | None, after: dict[int, float] | None
) -> float | None:
    if before is None or after is None:
        return None
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def persistence_check(event) -> str:  # type: ignore[no-untyped-def]
    """Spot check, printed: active rows vs reserved seats in Redis."""
    from apps.persistence.models import Reservation, ReservedSeat
    from apps.reservations import selectors

    snapshot = selectors.inventory_snapshot_get(event_id=event.pk)
    reserved = {
        seat: ref
        for seat in snapshot.state
        for state, ref in [snapshot.seat_state(seat)]
        if state == "reserved"
    }
    active = dict(
        ReservedSeat.objects.filter(event=event, active=True).values_list(
            "seat_key", "reservation_id"
        )
    )
    same = {k: str(v) for k, v in active.items()} == reserved
    rows = Reservation.objects.filter(event=event).count()
    cancelled = Reservation.objects.filter(event=event, status="cancelled").count()
    verdict = "OK" if same else "MISMATCH"
    return (
        f"{rows:,} reservations ({cancelled} cancelled), {len(active):,} active seats vs "
        f"{len(reserved):,} reserved in Redis → {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seats", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=24_000, help="domain events to generate")
    parser.add_argument("--timeout", type=float, default=300.0, help="per consumer, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--consumers",
        default=",".join(BENCHED),
        help="which projection consumers to run, comma-separated (e.g. to profile one)",
    )
    args = parser.parse_args()

    from kafka.record.util import crc32c_c

    from apps.core.workers import workers_registered

    redis_info = redis_client_get().info("server")
    registered = sorted(workers_registered())
    print(
        f"bench/pipeline.py run {RUN}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Redis {redis_info['redis_version']}, Kafka "
        f"{','.join(settings.KAFKA_BOOTSTRAP_SERVERS)}, topic {SEAT_TOPIC}; "
        f"consumers registered: {', '.join(registered) or 'none'}"
    )
    # kafka-python checks every fetched batch's CRC-32C, in pure Python unless the crc32c
    # package is installed: that alone caps a consumer at a few thousand records a second.
    print(f"  kafka-python CRC-32C: {'crc32c (C)' if crc32c_c else 'pure Python (slow)'}")
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
        counts = traffic(event, args.events, random.Random(args.seed))
        elapsed = time.perf_counter() - began
        print(
            f"  write side: {counts['seq']:,} events in {elapsed:.1f} s "
            f"({counts['seq'] / elapsed:,.0f} events/s, one process, services → Lua): "
            f"{counts['holds']:,} holds, {counts['reserves']:,} reserves, "
            f"{counts['releases']:,} releases, {counts['blocks']} blocks, "
            f"{counts['cancels']} cancels, {counts['conflicts']} conflicts"
        )
        published, elapsed = relay_all()
        print(
            f"  relay: {published:,} published in {elapsed:.1f} s "
            f"({published / elapsed:,.0f} events/s, acks=all, one request in flight)"
        )
        for name in args.consumers.split(","):
            if name not in registered:
                print(f"  {name}: not registered (no app provides it yet); skipped")
                continue
            consumer_bench(name, published, args.timeout)
            if name == "persistence":
                print(f"    check: {persistence_check(event)}")
        dropped, elapsed = outbox_trim_applied_timed(event.pk)
        print(
            f"  outbox trim (the relay's, once both projections applied everything): {dropped:,} "
            f"entries dropped in {elapsed * 1000:.0f} ms ({dropped / elapsed:,.0f} entries/s)"
        )
    finally:
        print("cleanup: " + bench_cleanup(database=db_created))


if __name__ == "__main__":
    main()
