"""Every Prometheus metric of the platform, in one place (docs/architecture.md, Observability).

Web processes (granian's WSGI workers, the ws process's daphne workers) are several
processes behind one port: they run in prometheus_client's multi-process mode, each writing
its values to files under ``PROMETHEUS_MULTIPROC_DIR``, and ``/metrics`` of any of them
reports the sum of all. The process that starts them empties that directory first
(scripts/run_local.sh, scripts/ws_workers.py, the compose file). Every other process (the
relay, the Kafka consumers, Celery) is one process and serves its own port: see
``metrics_server_start``.

Names and labels are a contract with the dashboards (docker/grafana/) and bench/onsale.py.
Label values are bounded: commands and outcomes are fixed lists, events are the ones on sale.
"""

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MULTIPROC_DIR:
    # prometheus_client writes here on the first value; a missing directory would fail then.
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

# Command latencies: a hold is a few ms when all is well, a second when it is not.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# --- commands (web processes) -----------------------------------------------------------
COMMANDS = Counter(
    "seats_commands",
    "Buyer and staff commands by outcome: granted, throttled, error (a 5xx), or the "
    "error code of the refusal (seats_unavailable, hold_expired, ...; docs/api.md, Errors).",
    ["command", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "seats_command_duration_seconds",
    "Time to answer a command, from the view's start to its response.",
    ["command"],
    buckets=LATENCY_BUCKETS,
)

# --- the outbox relay ---------------------------------------------------------------------
OUTBOX_BACKLOG = Gauge(
    "seats_outbox_backlog",
    "Envelopes of an event that the broker has not acknowledged yet.",
    ["event"],
)
OUTBOX_KEPT = Gauge(
    "seats_outbox_kept",
    "Outbox entries of an event kept because some projection has not applied them yet.",
    ["event"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "seats_outbox_oldest_age_seconds",
    "Age of the event's oldest kept outbox entry (0 when the outbox is empty).",
    ["event"],
)
RELAY_PUBLISHED = Counter(
    "seats_relay_published", "Envelopes the broker acknowledged (the relay's publish rate)."
)

# --- the Kafka consumers ------------------------------------------------------------------
CONSUMER_LAG = Gauge(
    "seats_consumer_lag",
    "Messages of a partition that the consumer group has not processed yet.",
    ["consumer", "topic", "partition"],
)
CONSUMER_BATCH_SIZE = Histogram(
    "seats_consumer_batch_size",
    "Messages per batch.",
    ["consumer"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
CONSUMER_BATCH_SECONDS = Histogram(
    "seats_consumer_batch_duration_seconds",
    "Time to apply and commit one batch.",
    ["consumer"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_MESSAGES = Counter(
    "seats_consumer_messages",
    "Messages by result: applied, duplicate (seen before, skipped), dead_letter.",
    ["consumer", "result"],
)
PROJECTION_GAPS = Counter(
    "seats_projection_gaps",
    "Holes in an event's seq a projection met, by outcome: filled (the missing envelopes "
    "read from the outbox) or repaired (rebuilt from the seat states).",
    ["consumer", "outcome"],
)

# --- the live map (ws processes) ------------------------------------------------------------
# liveall: one series per live process (pid label); a dead worker's series go with it.
SOCKETS = Gauge(
    "seats_ws_sockets", "Open seat-map sockets of this process.", multiprocess_mode="liveall"
)
FRAMES_SENT = Counter("seats_ws_frames_sent", "Frames written to sockets.")
FRAMES_DROPPED = Counter(
    "seats_ws_frames_dropped",
    "Frames dropped for a socket whose snapshot was still being built and had too many "
    "frames waiting; the client resyncs on the gap.",
)
RESYNCS = Counter("seats_ws_resyncs", "Snapshots sent again because a client asked (a gap).")

# --- the sale (the stats worker, from its projection) ------------------------------------
EVENT_SEATS = Gauge(
    "seats_event_seats", "Seats of an event by state (the stats projection).", ["event", "state"]
)
EVENT_REVENUE = Gauge(
    "seats_event_revenue", "Sum of the prices of an event's reserved seats.", ["event"]
)

# --- the hold expiry sweep (Celery) ----------------------------------------------------------
HOLDS_EXPIRED = Counter("seats_holds_expired", "Holds the sweep ended because they expired.")

# --- waiting rooms (Celery, from each admission tick) ---------------------------------------
ROOM = Gauge(
    "seats_room",
    "An event's waiting room: waiting, admitted, active, dropped (docs/architecture.md, "
    "Waiting room), as of the last tick.",
    ["event", "figure"],
)

# --- liveness of the worker processes --------------------------------------------------------
HEARTBEAT = Gauge(
    "seats_worker_heartbeat_timestamp_seconds",
    "When the worker's loop last went round (Unix time); scripts/worker_alive.py checks it.",
    ["worker"],
)


def command_observe(command: str, status: int, code: object, seconds: float) -> None:
    """Count one answered command (``code``: the error body's code, docs/api.md, Errors)."""
    if status < 400:
        outcome = "granted"
    elif status == 429:  # the rate's ("throttled") or the new-buyer limit's code
        outcome = code if isinstance(code, str) else "throttled"
    elif status >= 500 or not isinstance(code, str):
        outcome = "error" if status >= 500 else "invalid"
    else:
        outcome = code
    COMMANDS.labels(command, outcome).inc()
    COMMAND_SECONDS.labels(command).observe(seconds)


def heartbeat(worker: str) -> None:
    HEARTBEAT.labels(worker).set(time.time())


def metrics_registry() -> CollectorRegistry:
    """What this process reports: every process's files in multi-process mode, else its own."""
    if not MULTIPROC_DIR:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_text() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    return generate_latest(metrics_registry()), CONTENT_TYPE_LATEST


def metrics_server_start(port: int | None) -> None:
    """Serve this worker process's metrics on ``port`` (all interfaces: Prometheus scrapes
    it from another container). None or 0: no server, for tests and one-off runs."""
    if port:
        start_http_server(port, registry=metrics_registry())


def metrics_port() -> int | None:
    """The worker's metrics port, from SEATS_METRICS_PORT (each Procfile line sets its own)."""
    value = os.environ.get("SEATS_METRICS_PORT", "")
    return int(value) if value.strip() else None
