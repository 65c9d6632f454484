"""What every worker's loop shares: the Kafka workers (apps/core/workers.py) and the outbox
relay (apps/reservations/relay.py). docs/architecture.md, Consumers and Events on Kafka.

- a heartbeat each time round (``seats_worker_heartbeat_timestamp_seconds``: the workers'
  liveness probe, scripts/worker_alive.py, reads it);
- one back-off policy after a transient failure (a database, Redis or the broker down);
- a throughput line in the log every ``STATS_INTERVAL_S``;
- SIGTERM/SIGINT: the first finishes the batch in hand and stops, a second stops at once.
"""

import logging
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from apps.core import metrics

log = logging.getLogger(__name__)

# Back-off after a transient failure: quick retries for a blip, then at most one attempt per
# BACKOFF_MAX_S while the outage lasts, which also bounds how late a worker notices the end
# of one.
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
# Throughput (and lag or backlog) is logged this often.
STATS_INTERVAL_S = 10.0


def backoff_delay(failures: int) -> float:
    """How long to wait after the ``failures``-th transient failure in a row (1, 2, ...)."""
    delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures - 1, 16))
    # Jitter keeps the copies of a worker that lost the same server from retrying in step.
    return delay * random.uniform(0.8, 1.0)


class Interval:
    """Says when ``seconds`` have passed since it last did (for work done every so often
    inside a loop that goes round much more often)."""

    def __init__(self, seconds: float, *, due_now: bool = False) -> None:
        self.seconds = seconds
        self.last = float("-inf") if due_now else time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


class WorkerLoop:
    """One worker's loop::

        loop = WorkerLoop("relay", stop, log=log)
        while loop.running():
            try:
                ...  # one round
            except TransientError as exc:
                loop.failed(exc)  # logs, waits the back-off
                continue
            loop.succeeded()

    ``name`` labels the heartbeat (relay, persistence, stats, gateway); ``title`` names the
    worker in the log lines, which go to the caller's ``log``.
    """

    def __init__(
        self,
        name: str,
        stop: threading.Event,
        *,
        log: logging.Logger,
        title: str | None = None,
    ) -> None:
        self.name = name
        self.title = title or name
        self.stop = stop
        self.log = log
        self.failures = 0
        self._stats_since = time.monotonic()

    def running(self) -> bool:
        """Beat the heartbeat; False once a stop was requested."""
        metrics.heartbeat(self.name)
        return not self.stop.is_set()

    def failed(self, exc: BaseException) -> None:
        """A transient failure: log it and wait the back-off (a stop request cuts it short)."""
        self.failures += 1
        delay = backoff_delay(self.failures)
        self.log.warning(
            "%s: %r; retrying in %.1fs (failure %d)", self.title, exc, delay, self.failures
        )
        self.stop.wait(delay)

    def succeeded(self) -> None:
        """A round worked: the next failure starts the back-off from the beginning."""
        if self.failures:
            self.log.info("%s: recovered after %d failures", self.title, self.failures)
            self.failures = 0

    def stats_window(self) -> float | None:
        """Every ``STATS_INTERVAL_S``: the seconds since the last time, over which the caller
        logs its figures and then starts them again; None in between."""
        now = time.monotonic()
        elapsed = now - self._stats_since
        if elapsed < STATS_INTERVAL_S:
            return None
        self._stats_since = now
        return elapsed


@contextmanager
def stop_on_signals(stop: threading.Event, name: str) -> Iterator[None]:
    """While in the block, SIGTERM or SIGINT sets ``stop``: the worker finishes the batch in
    hand (commits, acknowledgements, trims) and returns. The handlers then give way to the
    ones before them, so a second signal stops the process at once (Ctrl-C raises
    KeyboardInterrupt, TERM terminates). The previous handlers are back after the block.

    For the main thread of a management command (only it may set handlers).
    """
    previous: dict[signal.Signals, Any] = {}

    def stop_requested(signum: int, frame: FrameType | None) -> None:
        log.info(
            "%s: %s received, stopping after the batch in hand (again: at once)",
            name,
            signal.Signals(signum).name,
        )
        stop.set()
        # An impatient operator can still stop it now.
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, stop_requested)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
