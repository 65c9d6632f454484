"""The real stack for browser tests: the Procfile's processes, started by honcho as `make run`
starts them, on the running test's database, Redis prefix, Kafka topics and groups.

By default only what a buyer's page needs runs: the one origin (proxy: nginx) in front of
web (granian) and ws (daphne), relay, persistence, stats and gateway. Celery is left out:
nothing in a browser test waits for a hold to expire (``Stack(..., processes=ALL)`` runs it).
Each worker's metrics port is ``metrics_url(name)``. ``env`` adds to (or overrides) the
processes' environment, e.g. SEATS_HTTP_UPSTREAMS for a proxy in front of several stacks
(tests/test_web_nodes.py: two web nodes as two machines on the same backing services).
"""

import http.client
import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from email.message import Message
from functools import partial
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ["proxy", "web", "ws", "relay", "persistence", "stats", "gateway"]
ALL = [*PROCESSES, "celery"]
# The Procfile's worker metrics ports: SEATS_METRICS_BASE + this.
METRICS_OFFSETS = {"relay": 1, "persistence": 2, "stats": 3, "gateway": 4, "celery": 5}
START_S = 60  # a guard against hanging, not a timing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_range(count: int) -> int:
    """A port p with p + 1 … p + count free too (for SEATS_METRICS_BASE)."""
    while True:
        base = free_port()
        try:
            for port in range(base + 1, base + count + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base


def database_url() -> str:
    """The test database (pytest-django's, with its committed rows) as a DATABASE_URL."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Stack:
    def __init__(
        self, log_path: Path, processes: list[str] = PROCESSES, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http_port, self.ws_port = free_port(), free_port()
        self.metrics_base = free_port_range(len(METRICS_OFFSETS))
        self.processes = processes
        self.log_path = log_path
        self.env = env or {}
        self.run_dir = tempfile.mkdtemp(prefix="seats-stack-")  # nginx's files
        # Started as root, nginx's workers run as nobody: they must reach the temporary
        # files of request bodies over client_body_buffer_size (16 KB) in there.
        os.chmod(self.run_dir, 0o755)  # noqa: S103
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)  # granian, daphne, nginx of this virtualenv
        environment = os.environ | {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "DATABASE_POOL_SIZE": "4",
            "SEATS_PORT": str(self.port),
            "SEATS_HTTP_PORT": str(self.http_port),
            "SEATS_WS_PORT": str(self.ws_port),
            "SEATS_RUN_DIR": self.run_dir,
            "SEATS_METRICS_DIR": f"{self.run_dir}/metrics",
            "SEATS_METRICS_BASE": str(self.metrics_base),
            "SEATS_REDIS_PREFIX": settings.SEATS_REDIS_PREFIX,
            # The proxy (nginx) appends each client's address to X-Forwarded-For.
            "SEATS_TRUSTED_PROXIES": "1",
            "KAFKA_TOPIC_SEAT_EVENTS": settings.KAFKA_TOPIC_SEAT_EVENTS,
            "KAFKA_TOPIC_STATS_EVENTS": settings.KAFKA_TOPIC_STATS_EVENTS,
            "KAFKA_GROUP_PREFIX": settings.SEATS_REDIS_PREFIX,
            "PYTHONUNBUFFERED": "1",
        }
        return environment | self.env

    def __enter__(self) -> "Stack":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "honcho"),
                *("start", "-f", "Procfile", *self.processes),
            ],
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: stopped together
        )
        log.close()
        try:
            self._wait_for_web()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_for_web(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited; see {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"web did not answer in {START_S} s:\n{self.log_tail()}")

    def metrics_url(self, process: str) -> str:
        """Where ``process`` serves its metrics: web and ws on their HTTP ports (every
        worker of the group's), the others on their own ports (the Procfile)."""
        if process in ("web", "ws"):
            port = self.http_port if process == "web" else self.ws_port
            return f"http://127.0.0.1:{port}/metrics"
        return f"http://127.0.0.1:{self.metrics_base + METRICS_OFFSETS[process]}/metrics"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # honcho stops its children
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class FromAddress(urllib.request.HTTPHandler):
    """Connects from ``source``: one of the loopback addresses, as another machine would."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(
            partial(http.client.HTTPConnection, source_address=(self.source, 0)), req
        )


class Browser:
    """An HTTP client from one address: cookies kept (a browser) or not (a script that
    drops them), the CSRF token echoed once it has one, any X-Forwarded-For it likes."""

    def __init__(self, base_url: str, source: str = "127.0.0.1", cookies: bool = True) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [FromAddress(source)]
        if cookies:
            handlers.append(urllib.request.HTTPCookieProcessor(self.cookies))
        self.opener = urllib.request.build_opener(*handlers)

    def post(
        self, path: str, body: dict, forwarded_for: str | None = None
    ) -> tuple[int, dict, Message]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        csrf = next((c.value for c in self.cookies if c.name == "csrftoken"), None)
        if csrf:
            headers["X-CSRFToken"] = csrf
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        request = urllib.request.Request(  # noqa: S310 - our own http URL
            self.base_url + path, data=json.dumps(body).encode(), headers=headers
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), error.headers
