"""Liveness probe of a worker container (relay, Kafka consumers, Celery).

Each worker sets `seats_worker_heartbeat_timestamp_seconds{worker=…}` every turn of its loop
and serves its metrics on SEATS_METRICS_PORT (apps/core/metrics.py). A process can be up,
listening and stuck at once; its heartbeat is what shows that it still goes round:

    python scripts/worker_alive.py [--port N] [--max-age 60]

Exit 0 when the newest heartbeat is younger than --max-age seconds, else 1 with one line on
stderr saying why (Docker reads any other non-zero code as an error of the probe itself).
It imports no Django: the compose healthcheck runs it every few seconds in every worker.
"""

import argparse
import os
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

HEARTBEAT = "seats_worker_heartbeat_timestamp_seconds"
# Below the compose healthcheck's timeout, so a hung server gets a reason, not a kill.
FETCH_TIMEOUT_S = 3.0


def newest_heartbeat(text: str) -> float | None:
    """The newest heartbeat in a Prometheus exposition text, or None if it has none."""
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == HEARTBEAT
    ]
    return max(values, default=None)


def check(port: int, max_age: float) -> str | None:
    """None if the worker on `port` is alive, else the reason it is not."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310
            text = response.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no metrics at {url}: {reason}"
    try:
        beat = newest_heartbeat(text)
    except ValueError as exc:
        return f"unreadable metrics at {url}: {exc}"
    if beat is None:
        return f"no {HEARTBEAT} at {url}: the worker's loop has not gone round yet"
    age = time.time() - beat
    if age >= max_age:
        return f"last heartbeat {age:.0f} s ago (limit {max_age:g} s): the worker is stuck"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="default: $SEATS_METRICS_PORT")
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        value = os.environ.get("SEATS_METRICS_PORT", "").strip()
        if not value.isdigit():
            print("worker_alive: no --port and no SEATS_METRICS_PORT", file=sys.stderr)
            return 1
        port = int(value)
    reason = check(port, args.max_age)
    if reason:
        print(f"worker_alive: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
