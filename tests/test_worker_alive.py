"""scripts/worker_alive.py, the workers' compose healthcheck, against a real metrics server.

The server is prometheus_client's own (what `metrics_server_start` runs in a worker), on a
free port, with a fresh registry so the test sees only the heartbeat it sets.
"""

import os
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, start_http_server

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "worker_alive.py"
HEARTBEAT = runpy.run_path(str(SCRIPT))["HEARTBEAT"]


def probe(*args: str, port: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SEATS_METRICS_PORT"}
    if port is not None:
        env["SEATS_METRICS_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=30
    )


@pytest.fixture
def worker():
    """A metrics server like a worker's: (its port, its heartbeat gauge)."""
    registry = CollectorRegistry()
    gauge = Gauge(HEARTBEAT, "test heartbeat", ["worker"], registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield server.server_port, gauge
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_probe_reads_the_heartbeat_that_apps_core_metrics_defines():
    import apps.core.metrics  # noqa: F401  (registers the platform's metrics)

    assert HEARTBEAT in {family.name for family in REGISTRY.collect()}


def test_fresh_heartbeat_is_alive(worker):
    port, gauge = worker
    gauge.labels("relay").set(time.time())
    result = probe("--port", str(port))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_port_comes_from_seats_metrics_port(worker):
    port, gauge = worker
    gauge.labels("relay").set(time.time())
    assert probe(port=port).returncode == 0


def test_stale_heartbeat_is_dead(worker):
    port, gauge = worker
    gauge.labels("relay").set(time.time() - 120)
    result = probe("--port", str(port))
    assert result.returncode == 1
    assert "120 s ago" in result.stderr or "121 s ago" in result.stderr, result.stderr
    # --max-age moves the limit.
    assert probe("--port", str(port), "--max-age", "300").returncode == 0


def test_newest_of_several_heartbeats_counts(worker):
    port, gauge = worker
    gauge.labels("old").set(time.time() - 600)
    gauge.labels("new").set(time.time())
    assert probe("--port", str(port)).returncode == 0


def test_no_heartbeat_yet_is_dead(worker):
    port, _ = worker
    result = probe("--port", str(port))
    assert result.returncode == 1
    assert "has not gone round" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_nothing_listening_is_dead():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed: nothing listens on that port any more.
    result = probe("--port", str(port))
    assert result.returncode == 1
    assert f"no metrics at http://127.0.0.1:{port}/metrics" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_port_at_all_is_dead():
    result = probe()
    assert result.returncode == 1
    assert "SEATS_METRICS_PORT" in result.stderr
