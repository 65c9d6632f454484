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
import urllib.request
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


def free_port_block(count: int) -> int:
    """A port ``base`` such that base + 1 … base + ``count`` are all free (SEATS_METRICS_BASE:
    each worker of the Procfile serves its metrics on base + its number)."""
    for _ in range(100):
        base = free_port()
        probes = []
        try:
            for offset in range(1, count + 1):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no block of {count} free ports found")


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

    from apps.core.projections import dead_letter_topic

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


def bench_groups_delete() -> list[str]:
    """Delete the consumer groups of this run's stack (KAFKA_GROUP_PREFIX = PREFIX, see
    Stack): one per registered consumer, by name (Tansu lists no groups); returns those
    the broker deleted."""
    from django.conf import settings
    from kafka import KafkaAdminClient

    from apps.core.workers import workers_registered

    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, request_timeout_ms=10_000
    )
    try:
        ours = sorted(f"{PREFIX}-{name}" for name in workers_registered())
        results = dict(admin.delete_groups(ours))  # kafka-python 3: {group: "OK" or an error}
        return [group for group, outcome in results.items() if outcome == "OK"]
    finally:
        admin.close()


def bench_cleanup(*, database: bool, groups: bool = False) -> str:
    """Delete this run's Redis keys, topics, (if it was created) database and (``groups``:
    a stack ran) consumer groups; says what."""
    notes = [f"{redis_cleanup()} Redis keys under {PREFIX}:* deleted"]
    if database:
        bench_database_drop()
        notes.append(f"database {BENCH_DB} dropped")
    try:
        notes.append(f"topics deleted: {', '.join(bench_topics_delete()) or 'none'}")
    except Exception as exc:  # noqa: BLE001 - cleanup reports, never hides the result
        notes.append(f"topics not deleted ({exc!r})")
    if groups:
        try:
            notes.append(f"consumer groups deleted: {', '.join(bench_groups_delete()) or 'none'}")
        except Exception as exc:  # noqa: BLE001 - as above
            notes.append(f"consumer groups not deleted ({exc!r})")
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


# For a bench whose buyers all come from one address: the path is measured, not the
# per-buyer rate or the per-address limits (docs/architecture.md, "Abuse limits").
NO_BUYER_LIMITS = {
    "SEATS_COMMAND_RATE": "1000000/s",
    "SEATS_NEW_BUYERS_PER_ADDRESS": "0",
    "SEATS_ADDRESS_HOLD_FACTOR": "0",
}


class Server:
    """A web server on 127.0.0.1:<free port>, in a process group of its own, stopped with
    it (SIGTERM, then SIGKILL): daphne serving everything, or ``command`` (which finds its
    port in SEATS_PORT, e.g. honcho running the Procfile's web tier).

    It inherits the environment, pointed at this run's keys and database; ``extra_env``
    adds what one bench needs on top (e.g. a throttle lifted). Files the server writes
    (nginx's, the web processes' metrics: SEATS_METRICS_DIR) go to a directory of its
    own, SEATS_RUN_DIR, deleted on stop.
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
            # Not the developer's .local/metrics: multi-process files must not mix runs.
            SEATS_METRICS_DIR=os.path.join(self.run_dir, "metrics"),
            LOG_LEVEL="ERROR",  # a 409 is logged as a warning: thousands of lines
            # Under ASGI every request runs in a thread of its own, and a persistent
            # connection (base.py's default CONN_MAX_AGE=60) stays open with each dead
            # thread until Postgres refuses new clients ("too many clients already").
            CONN_MAX_AGE="0",
            # The load generators stand in for a front proxy that names each simulated
            # buyer's address in X-Forwarded-For (wrkload.py, the Node clients); with the
            # proxy of the Procfile in between, that is the second entry from the right.
            # A bench that sends none counts as one address (docs/architecture.md,
            # "Abuse limits"): it lifts those limits itself.
            SEATS_TRUSTED_PROXIES="2",
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


# --- the whole stack, and what its processes report ---------------------------------------

# The Procfile's workers that serve their own metrics, on SEATS_METRICS_BASE + n.
METRICS_WORKERS = {"relay": 1, "persistence": 2, "stats": 3, "gateway": 4, "celery": 5}


class Stack(Server):
    """The Procfile's processes (all, or ``processes``) under honcho, as `make run` starts
    them (scripts/run_local.sh; tests/stack.py for the browser test), on this run's
    database, Redis prefix, Kafka topics and consumer groups (KAFKA_GROUP_PREFIX = PREFIX),
    ports, run directory and metrics directory and ports (SEATS_METRICS_BASE). ``port`` is
    the one origin (the proxy); ``http_port`` and ``ws_port`` web's and ws's own, where
    their /metrics are served (the proxy does not pass it).
    Create the topics first (apps.core.kafka.topics_ensure)."""

    def __init__(
        self, extra_env: dict[str, str] | None = None, *, processes: tuple[str, ...] = (),
        name: str = "stack",
    ) -> None:  # fmt: skip
        bin_dir = Path(sys.executable).parent  # honcho, granian, daphne, celery, nginx
        self.http_port, self.ws_port = free_port(), free_port()
        self.metrics_base = free_port_block(max(METRICS_WORKERS.values()))
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "SEATS_HTTP_PORT": str(self.http_port),
            "SEATS_WS_PORT": str(self.ws_port),
            "SEATS_METRICS_BASE": str(self.metrics_base),
            "KAFKA_TOPIC_SEAT_EVENTS": SEAT_TOPIC,
            "KAFKA_TOPIC_STATS_EVENTS": STATS_TOPIC,
            "KAFKA_GROUP_PREFIX": PREFIX,
            "PYTHONUNBUFFERED": "1",
        }
        env.update(extra_env or {})
        command = [str(bin_dir / "honcho"), "start", "-f", "Procfile", *processes]
        super().__init__(env, command=command, name=name)

    def metrics_urls(self) -> dict[str, str]:
        """Every metrics endpoint of the stack, by process: web and ws (several processes in
        multi-process mode, any of which answers for all) on their own ports, not through
        the proxy; the workers on SEATS_METRICS_BASE + n."""
        urls = {
            "web": f"http://127.0.0.1:{self.http_port}/metrics",
            "ws": f"http://127.0.0.1:{self.ws_port}/metrics",
        }
        for name, offset in METRICS_WORKERS.items():
            urls[name] = f"http://127.0.0.1:{self.metrics_base + offset}/metrics"
        return urls


# (sample name, sorted labels) → value: one scrape of one endpoint.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# Never through a proxy from the environment: these are 127.0.0.1 addresses.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def metrics_read(url: str, timeout: float = 2.0) -> Samples | None:
    """One scrape of a Prometheus text endpoint; None when it does not answer (not up yet,
    or no metrics served there). Counters are named with their ``_total`` suffix."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            text = response.read().decode()
        samples: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples
    except (OSError, ValueError):  # refused, 404, timed out, not Prometheus text
        return None


def samples_sum(samples: Samples | None, name: str, by: str | None = None) -> dict[str, float]:
    """The samples called ``name``, summed per value of the label ``by`` (all under "" if
    None); {} when there are none."""
    sums: dict[str, float] = {}
    for (sample, labels), value in (samples or {}).items():
        if sample == name:
            key = dict(labels).get(by, "") if by else ""
            sums[key] = sums.get(key, 0.0) + value
    return sums


class MetricsScraper:
    """Scrapes ``urls`` (name → URL) every ``interval`` seconds in a thread of its own.
    ``series``: per round, (time.monotonic(), {name: the samples called one of ``keep``, or
    None}); ``last``: each endpoint's last full answer."""

    def __init__(self, urls: dict[str, str], keep: tuple[str, ...], interval: float = 1.0) -> None:
        self.urls, self.keep, self.interval = urls, keep, interval
        self.series: list[tuple[float, dict[str, Samples | None]]] = []
        self.last: dict[str, Samples] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)

    def start(self) -> "MetricsScraper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def scrape(self) -> dict[str, Samples | None]:
        """One round now (also what the thread does every interval)."""
        found: dict[str, Samples | None] = {}
        for name, url in self.urls.items():
            samples = metrics_read(url)
            if samples is not None:
                self.last[name] = samples
                samples = {k: v for k, v in samples.items() if k[0] in self.keep}
            found[name] = samples
        self.series.append((time.monotonic(), found))
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.scrape()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
