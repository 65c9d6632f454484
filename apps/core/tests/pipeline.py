"""For tests that run parts of the pipeline for real: the outbox relay once, Kafka workers
in threads, reading a topic, and waiting for what they do."""

import threading
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2

from apps.core.kafka import TOPIC_PARTITIONS, KeySerializer, kafka_producer_create
from apps.reservations.lease import Leases
from apps.reservations.relay import RelayPublishError, Sent, outbox_publish, outbox_relay_run

# A guard against hanging (Tansu's first consumer-group join takes seconds), not a timing.
WAIT_S = 90


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


# Each test's relay positions (keyed by its Redis prefix, unique per test): one long-running
# relay remembers what the broker acknowledged between passes, and so do these helpers.
_POSITIONS: dict[str, dict[int, Sent]] = {}


def outbox_relay_once(*, producer: KafkaProducer, sent: dict[int, Sent] | None = None) -> int:
    """Publish what the outboxes hold past what this test's relay published before, for
    every event no other relay leases, with the relay's own passes
    (apps/reservations/relay.py), then hand the leases back. ``sent``: positions of a relay
    of the caller's own (``{}``: one that just started, so everything kept goes again).

    Returns how many entries the broker acknowledged. Raises RelayPublishError when some
    were not; they are sent on the next call.
    """
    if sent is None:
        sent = _POSITIONS.setdefault(settings.SEATS_REDIS_PREFIX, {})
    leases = Leases()
    acknowledged = 0
    try:
        leases.refresh(force=True)
        while True:
            result = outbox_publish(producer=producer, leases=leases, sent=sent)
            acknowledged += result.acknowledged
            if result.error is not None:
                raise RelayPublishError(acknowledged=acknowledged, cause=result.error)
            if not result.full:
                return acknowledged
    finally:
        leases.release()


def relay() -> int:
    """Publish every outbox entry not published yet (as `manage.py relay_outbox` would);
    how many."""
    producer = kafka_producer_create()
    try:
        return outbox_relay_once(producer=producer)
    finally:
        producer.close(timeout=5)


def topic_records(topic: str) -> list[ConsumerRecord]:
    """Every record on ``topic`` so far: partition after partition, each in log order.

    No consumer group (a join costs seconds on Tansu): every partition is read from its
    start up to the end offset the broker reports when the read begins.
    """
    reader = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, group_id=None, enable_auto_commit=False
    )
    try:
        wait_until(lambda: bool(reader.partitions_for_topic(topic)), f"topic {topic}", timeout=10)
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic))]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        ends = reader.end_offsets(partitions)
        read: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in partitions}

        def take(timeout_ms: int) -> bool:
            polled = reader.poll(timeout_ms=timeout_ms)
            for tp, records in polled.items():
                read[tp] += records
            return bool(polled)

        def at_end() -> bool:
            take(100)
            return all(reader.position(tp) >= ends[tp] for tp in partitions)

        wait_until(at_end, f"the end of {topic}", timeout=30)
        # A broker may report less than the end (Tansu 0.6: a batch's base offset + 1, see
        # apps/stats/rebuild.py); a fetch brings whole batches, so the rest is in hand.
        while take(0):
            pass
        return [record for tp in partitions for record in read[tp]]
    finally:
        reader.close(autocommit=False)


class Running:
    """Workers of the given classes in threads, each in a consumer group of the test's own,
    until the block ends; a worker that crashed fails the test there."""

    def __init__(self, *classes: type) -> None:
        self.workers = [cls(group_id=f"test-{uuid.uuid4().hex[:10]}") for cls in classes]
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True) for w in self.workers
        ]

    def _run(self, worker) -> None:  # type: ignore[no-untyped-def]
        try:
            worker.run(self.stop)
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
            assert not thread.is_alive(), "a worker did not stop"
        assert not self.errors, self.errors


class RelayThread:
    """``outbox_relay_run`` in a thread, as the management command runs it in a process."""

    def __init__(self, **producer_options: object) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=outbox_relay_run,
            kwargs={"stop": self.stop, "producer_options": producer_options},
        )

    def __enter__(self) -> "RelayThread":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the relay did not stop"


def event_partition(event_id: int, partitions: int) -> int:
    """The partition of a topic of ``partitions`` that the producer's default partitioner
    (kafka-python's DefaultPartitioner, as the Java client's) gives an event's messages."""
    key = KeySerializer().serialize("", [], event_id)
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def events_on_every_partition(venue, **fields):  # type: ignore[no-untyped-def]
    """Events on sale at ``venue``, one on each partition of the seat topic (by their key,
    as the relay publishes them), in partition order; ``fields`` for EventFactory."""
    from apps.reservations import services
    from apps.reservations.models import Event
    from apps.reservations.tests.factories import EventFactory

    chosen: dict[int, Event] = {}
    for _ in range(500):  # ~15 on average find every partition
        event = EventFactory(venue=venue, sale_status=Event.SaleStatus.DRAFT, **fields)
        partition = event_partition(event.pk, TOPIC_PARTITIONS)
        if chosen.setdefault(partition, event) is not event:
            event.delete()  # a draft on a partition already taken: not needed
        if len(chosen) == TOPIC_PARTITIONS:
            break
    assert len(chosen) == TOPIC_PARTITIONS
    for event in chosen.values():
        services.event_open_sale(event=event)
    return [chosen[p] for p in sorted(chosen)]
