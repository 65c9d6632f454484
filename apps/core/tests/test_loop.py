"""What every worker's loop shares (apps/core/loop.py): the Kafka workers and the outbox relay
stop, back off and report alike."""

import logging
import os
import signal
import threading

import pytest
from prometheus_client import REGISTRY

from apps.core.loop import (
    BACKOFF_FIRST_S,
    BACKOFF_MAX_S,
    WorkerLoop,
    backoff_delay,
    stop_on_signals,
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_first_signal_asks_to_stop_and_a_second_stops_at_once(sig):
    stop = threading.Event()
    second: list[int] = []

    def previous(signum, frame):  # type: ignore[no-untyped-def]
        second.append(signum)  # the process's own handler: the default would end it here

    before = signal.signal(sig, previous)
    try:
        with stop_on_signals(stop, "test worker"):
            os.kill(os.getpid(), sig)
            assert stop.is_set()  # the batch in hand is finished, then the loop returns
            assert second == []
            os.kill(os.getpid(), sig)
            assert second == [sig]  # not asked again: stopped now
        assert signal.getsignal(sig) is previous  # the handlers are put back
    finally:
        signal.signal(sig, before)


def test_the_back_off_grows_from_a_quick_retry_to_its_ceiling():
    delays = [backoff_delay(failures) for failures in range(1, 30)]
    assert BACKOFF_FIRST_S * 0.8 <= delays[0] <= BACKOFF_FIRST_S
    assert delays[1] > delays[0]
    assert all(BACKOFF_MAX_S * 0.8 <= d <= BACKOFF_MAX_S for d in delays[-10:])


def test_a_loop_beats_logs_its_failures_and_its_recovery(caplog):
    stop = threading.Event()
    loop = WorkerLoop("test-loop", stop, log=logging.getLogger("test.loop"), title="looper")

    assert loop.running()
    beat = REGISTRY.get_sample_value(
        "seats_worker_heartbeat_timestamp_seconds", {"worker": "test-loop"}
    )
    assert beat is not None and beat > 0

    stop_after_wait = threading.Timer(0, stop.set)  # so that the back-off is not waited out
    stop_after_wait.start()
    with caplog.at_level(logging.INFO, logger="test.loop"):
        loop.failed(ConnectionError("down"))
        loop.succeeded()
    stop_after_wait.join()
    assert "looper: ConnectionError('down'); retrying in" in caplog.text
    assert "looper: recovered after 1 failures" in caplog.text
    assert not loop.running()
