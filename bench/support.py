"""What every bench script needs before and around its measurement.

Each run gets its own id, and with it its own Redis key prefix and its own throwaway
Postgres database, so a bench never reads or writes the developer's data and several runs
can share one machine. The scripts are run as ``python bench/<name>.py``, so ``bench/`` is
``sys.path[0]`` and they import this module as plain ``support``; importing it puts the
project root on ``sys.path`` for ``apps`` and ``config``.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN = uuid.uuid4().hex[:8]
PREFIX = f"seats-bench-{RUN}"
# This run's own topics, for the scripts that publish (pass them to bench_env_setup).
SEAT_TOPIC = f"seat-events-bench-{RUN}"
STATS_TOPIC = f"stats-events-bench-{RUN}"
BENCH_DB = f"seats_bench_{RUN}"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DB_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{BENCH_DB}"


def bench_env_setup(*, defaults: dict[str, str] | None = None, **extra_env: str) -> None:
    """Point Django at this run's keys and database, then ``django.setup()``.

    ``extra_env`` is set unconditionally (e.g. this run's own topics); ``defaults`` only
    where the caller's environment does not already say otherwise (e.g. DJANGO_DEBUG).
    """
    # Before Django reads its settings: every key this run writes carries the bench prefix,
    # and the catalog goes to the bench database, never the developer's.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["SEATS_REDIS_PREFIX"] = PREFIX
    os.environ["DATABASE_URL"] = BENCH_DB_URL
    os.environ.update(extra_env)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    for name, value in (defaults or {}).items():
        os.environ.setdefault(name, value)

    import django

    django.setup()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_database_create() -> None:
    """Create this run's database and migrate it (in a child, as a developer would)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, check=True
    )


def bench_database_drop() -> None:
    import psycopg
    from django.db import connections
    from psycopg import sql

    # Our own connections first; FORCE ends any a child (daphne, a worker) left open.
    connections.close_all()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )


def redis_cleanup() -> int:
    """Delete every key under this run's prefix; returns how many there were."""
    from apps.core.redis import redis_client_get  # needs django.setup()

    redis = redis_client_get()
    keys = list(redis.scan_iter(match=f"{PREFIX}:*", count=1000))
    for i in range(0, len(keys), 1000):
        redis.delete(*keys[i : i + 1000])
    return len(keys)


def holds_check(event_id: int) -> tuple[dict[str, str], dict[str, dict], list[str]]:
    """An event's seat states and holds, read in one transaction, and every way they
    disagree: a seat in two holds, a hold's seat not marked as held by it, a held seat
    that no live hold lists. The double-booking check of the hold benches."""
    import json

    from apps.core.redis import redis_client_get  # needs django.setup()
    from apps.reservations.redis.keys import event_keys

    keys = event_keys(event_id)
    with redis_client_get().pipeline(transaction=True) as pipe:
        state, raw_holds = pipe.hgetall(keys.state).hgetall(keys.holds).execute()
    holds = {token: json.loads(raw) for token, raw in raw_holds.items()}
    problems, owner = [], {}
    for token, hold in holds.items():
        for seat in hold["seats"]:
            if seat in owner:
                problems.append(f"event {event_id}: {seat} in holds {owner[seat]} and {token}")
            owner[seat] = token
            if state.get(seat) != f"h:{token}":
                problems.append(f"event {event_id}: {seat} of {token} is {state.get(seat)}")
    for seat, value in state.items():
        if not value.startswith("h:") or value[2:] not in holds:
            problems.append(f"event {event_id}: {seat} is {value!r}, not a live hold")
        elif owner.get(seat) != value[2:]:
            problems.append(f"event {event_id}: {seat}'s hold does not list it")
    return state, holds, problems


def bench_topics_delete() -> list[str]:
    """Delete this run's topics (and their dead-letter topics); returns those that existed."""
    from django.conf import settings
    from kafka import KafkaAdminClient

    from apps.core.consumers import dead_letter_topic

    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, request_timeout_ms=10_000
    )
    try:
        ours = {
            SEAT_TOPIC,
            STATS_TOPIC,
            dead_letter_topic(SEAT_TOPIC),
            dead_letter_topic(STATS_TOPIC),
        }
        doomed = sorted(set(admin.list_topics()) & ours)
        if doomed:
            admin.delete_topics(doomed)
        return doomed
    finally:
        admin.close()


def bench_cleanup(*, database: bool) -> str:
    """Delete this run's Redis keys, topics and (if it was created) database; says what."""
    notes = [f"{redis_cleanup()} Redis keys under {PREFIX}:* deleted"]
    if database:
        bench_database_drop()
        notes.append(f"database {BENCH_DB} dropped")
    try:
        notes.append(f"topics deleted: {', '.join(bench_topics_delete()) or 'none'}")
    except Exception as exc:  # noqa: BLE001 - cleanup reports, never hides the result
        notes.append(f"topics not deleted ({exc!r})")
    return "; ".join(notes)


def bench_event_create(*, seats: int, sections: int, rows: int, hold_ttl_s: int):  # type: ignore[no-untyped-def]
    """A venue of ``sections`` side by side, ``rows`` rows each, ``seats`` in all, in three
    price bands; and an event on it, put on sale (seats loaded into Redis)."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from apps.reservations import services
    from apps.reservations.layouts import SeatGrid
    from apps.reservations.models import Event, PriceCategory, Section, Venue

    per_row = max(1, seats // (sections * rows))
    venue = Venue.objects.create(
        name=f"Bench stadium {RUN}, {seats:,} seats", focal_x=0.0, focal_y=-50.0
    )
    categories = [
        PriceCategory.objects.create(venue=venue, name=name, price=Decimal(price))
        for name, price in (("Floor", "150"), ("Lower", "90"), ("Upper", "45"))
    ]
    for s in range(sections):
        section = Section.objects.create(
            venue=venue, name=f"S{s + 1}", category=categories[s % len(categories)]
        )
        grid = SeatGrid(rows=rows, seats_per_row=per_row, x=s * (per_row + 5) * 10.0)
        services.section_seats_generate(section=section, grid=grid)
    event = Event.objects.create(
        venue=venue,
        name=f"Bench show {RUN}",
        starts_at=timezone.now() + timedelta(days=30),
        sale_status=Event.SaleStatus.DRAFT,
        hold_ttl_seconds=hold_ttl_s,
        max_seats_per_hold=10,
    )
    services.event_open_sale(event=event)
    return event


def bench_row_seats(event) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The event's seat keys, one list per row, in seat-number order."""
    rows: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for key, section, row, number in event.venue.seats.values_list(
        "key", "section__name", "row", "number"
    ):
        rows.setdefault((section, row), []).append((number, key))
    return [[key for _, key in sorted(seats)] for seats in rows.values()]


class Server:
    """A web server on 127.0.0.1:<free port>, in a process group of its own, stopped with
    it (SIGTERM, then SIGKILL): daphne serving everything, or ``command`` (which finds its
    port in SEATS_PORT, e.g. honcho running the Procfile's web tier).

    It inherits the environment, pointed at this run's keys and database; ``extra_env``
    adds what one bench needs on top (e.g. a throttle lifted). Files the server writes
    (nginx's) go to a directory of its own, SEATS_RUN_DIR, deleted on stop.
    """

    def __init__(
        self,
        extra_env: dict[str, str] | None = None,
        *,
        command: list[str] | None = None,
        name: str = "daphne",
        port: int | None = None,
    ) -> None:
        # A caller may pick the port first, to name it to its command under another
        # variable too (e.g. SEATS_WS_PORT for scripts/ws_workers.py).
        self.port = port or free_port()
        self.log = Path(tempfile.gettempdir()) / f"seats-bench-{name}-{RUN}.log"
        self.run_dir = tempfile.mkdtemp(prefix=f"seats-bench-{name}-{RUN}-")
        env = dict(os.environ)
        env.update(
            SEATS_REDIS_PREFIX=PREFIX,
            DATABASE_URL=BENCH_DB_URL,
            SEATS_PORT=str(self.port),
            SEATS_RUN_DIR=self.run_dir,
            LOG_LEVEL="ERROR",  # a 409 is logged as a warning: thousands of lines
            # Under ASGI every request runs in a thread of its own, and a persistent
            # connection (base.py's default CONN_MAX_AGE=60) stays open with each dead
            # thread until Postgres refuses new clients ("too many clients already").
            CONN_MAX_AGE="0",
        )
        env.update(extra_env or {})
        env.setdefault("DJANGO_DEBUG", "false")  # no per-request query log
        self.debug = env["DJANGO_DEBUG"]
        daphne = Path(sys.executable).with_name("daphne")
        command = command or [
            str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/events/", headers={"Accept": "application/json"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer:\n{self.log.read_text()[-2000:]}")

    def stop(self, *, keep_log: bool = False) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if keep_log:
            print(f"  server log kept: {self.log}")
        else:
            self.log.unlink(missing_ok=True)


def relay_and_bridge_start(stop: threading.Event, *, group_id: str) -> list[threading.Thread]:
    """The outbox relay and the gateway bridge in threads, as their management commands
    would run them, until ``stop`` is set."""
    from apps.gateway.bridge import GatewayBridge
    from apps.reservations.relay import outbox_relay_run

    bridge = GatewayBridge(group_id=group_id)
    threads = [
        threading.Thread(target=outbox_relay_run, kwargs={"stop": stop}, daemon=True),
        threading.Thread(target=bridge.run, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    return threads
