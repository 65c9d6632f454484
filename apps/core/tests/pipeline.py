"""For tests that run parts of the pipeline for real: the outbox relay once, Kafka consumers
in threads, and waiting for what they do."""

import threading
import time
import uuid
from collections.abc import Callable

from apps.core.kafka import kafka_producer_create
from apps.reservations.relay import outbox_relay_once

# A guard against hanging (Tansu's first consumer-group join takes seconds), not a timing.
WAIT_S = 90


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


def relay() -> int:
    """Publish every outbox entry once (as `manage.py relay_outbox` would); how many."""
    producer = kafka_producer_create()
    try:
        return outbox_relay_once(producer=producer)
    finally:
        producer.close(timeout=5)


class Running:
    """Consumers of the given classes in threads, each in a consumer group of the test's own,
    until the block ends; a consumer that crashed fails the test there."""

    def __init__(self, *classes: type) -> None:
        self.consumers = [cls(group_id=f"test-{uuid.uuid4().hex[:10]}") for cls in classes]
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(c,), daemon=True) for c in self.consumers
        ]

    def _run(self, consumer) -> None:
        try:
            consumer.run(self.stop)
        except BaseException as exc:  # handed to the test
            self.errors.append(exc)

    def __enter__(self) -> "Running":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(WAIT_S)
            assert not thread.is_alive(), "a consumer did not stop"
        assert not self.errors, self.errors
