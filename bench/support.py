"""What every bench script needs before and around its measurement.

Each run gets its own id, and with it its own Redis key prefix and its own throwaway
Postgres database, so a bench never reads or writes the developer's data and several runs
can share one machine. The scripts are run as ``python bench/<name>.py``, so ``bench/`` is
``sys.path[0]`` and they import this module as plain ``support``; importing it puts the
project root on ``sys.path`` for ``apps`` and ``config``.
"""

import http.client
import os
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


class Server:
    """daphne on 127.0.0.1:<free port>, stopped by pid (SIGTERM, then SIGKILL).

    It inherits the environment, pointed at this run's keys and database; ``extra_env``
    adds what one bench needs on top (e.g. a throttle lifted).
    """

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = Path(tempfile.gettempdir()) / f"seats-bench-daphne-{RUN}.log"
        env = dict(os.environ)
        env.update(
            SEATS_REDIS_PREFIX=PREFIX,
            DATABASE_URL=BENCH_DB_URL,
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
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/events/", headers={"Accept": "application/json"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer:\n{self.log.read_text()[-2000:]}")

    def stop(self, *, keep_log: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
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
