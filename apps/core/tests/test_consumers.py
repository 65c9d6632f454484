"""The Kafka consumer framework against the real broker and Postgres (docs/architecture.md,
Consumers).

A tiny "tally" consumer inserts one row per envelope into a table of its own, with no
idempotency of its own: every duplicate that got through would show as an extra row, so
exactness below is the framework's doing (cursor + offsets after commit).
"""

import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from apps.core.consumers import (
    Envelope,
    EnvelopeError,
    KafkaBatchConsumer,
    consumer_class_get,
    consumer_register,
    consumer_unregister,
    dead_letter_topic,
    envelope_parse,
)
from apps.core.kafka import envelope_encode, kafka_producer_create, topics_ensure
from apps.core.logs import ContextFilter
from apps.core.models import ProjectionCursor
from apps.core.tests.pipeline import WAIT_S, wait_until

# The consumer runs in its own thread with its own connection: it must see, and commit,
# real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


class SimulatedCrash(Exception):
    pass


class TallyConsumer(KafkaBatchConsumer):
    name = "test-tally"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)
    table = ""  # set per test by the ``tally`` fixture

    def __init__(
        self,
        *,
        crash_before_offsets_commit: bool = False,
        transient_failures: int = 0,
        stop_during_first_batch: threading.Event | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.crash_before_offsets_commit = crash_before_offsets_commit
        self.transient_failures = transient_failures
        self.stop_during_first_batch = stop_during_first_batch
        self.results: list = []

    def consume_batch(self, messages: list[Envelope]) -> None:
        if self.stop_during_first_batch is not None:
            self.stop_during_first_batch.set()
            self.stop_during_first_batch = None
        if self.transient_failures:
            self.transient_failures -= 1
            raise OperationalError("server closed the connection unexpectedly (simulated)")
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            (txid,) = cursor.fetchone()
            for envelope in messages:
                if envelope.data.get("poison"):
                    raise ValueError(f"cannot apply seq {envelope.seq}")
                cursor.execute(
                    f"INSERT INTO {self.table} (event_id, seq, txid) VALUES (%s, %s, %s)",  # noqa: S608 - table name is the fixture's
                    [envelope.event_id, envelope.seq, txid],
                )

    def batch_process(self, records: list):  # type: ignore[no-untyped-def]
        result = super().batch_process(records)
        self.results.append(result)
        return result

    def offsets_commit(self, consumer: KafkaConsumer, offsets: dict) -> None:
        if self.crash_before_offsets_commit:
            raise SimulatedCrash("killed after the database commit, before the offsets")
        super().offsets_commit(consumer, offsets)


@pytest.fixture
def topic(settings):
    # One partition: the tests reason about one ordered log and its offsets.
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS], partitions=1)
    return settings.KAFKA_TOPIC_SEAT_EVENTS


@pytest.fixture
def tally(transactional_db, monkeypatch):
    table = f"test_tally_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (id serial PRIMARY KEY, event_id bigint NOT NULL, "
            "seq bigint NOT NULL, txid bigint NOT NULL)"
        )
    monkeypatch.setattr(TallyConsumer, "table", table)
    consumer_register(TallyConsumer)
    yield table
    consumer_unregister(TallyConsumer.name)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")


def tally_rows(table: str) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id, seq FROM {table} ORDER BY event_id, seq, id")  # noqa: S608
        return [tuple(row) for row in cursor.fetchall()]


def envelope(seq: int, event_id: int = 7, **data: object) -> bytes:
    return envelope_encode(
        {
            "id": str(uuid.uuid4()),
            "type": "test.tallied",
            "event_id": event_id,
            "seq": seq,
            "occurred_at": datetime.now(tz=UTC).isoformat(),
            "data": data,
        }
    )


def produce(topic: str, values: list[bytes], key: int = 7) -> None:
    producer = kafka_producer_create()
    try:
        futures = [producer.send(topic, key=key, value=value) for value in values]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close(timeout=5)


@contextmanager
def running(consumer: KafkaBatchConsumer) -> Iterator[dict]:
    """Run ``consumer`` in a thread; on exit stop it and wait. ``["error"]`` is its crash."""
    stop = threading.Event()
    outcome: dict = {"stop": stop, "error": None}

    def target() -> None:
        try:
            consumer.run(stop)
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"consumer-{consumer.name}", daemon=True)
    thread.start()
    outcome["thread"] = thread
    try:
        yield outcome
    finally:
        stop.set()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the consumer did not stop"


def committed_offset(group_id: str, topic: str) -> int | None:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        group_id=group_id,
        enable_auto_commit=False,
    )
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close(autocommit=False)


def dead_letters(topic: str) -> list:
    """Every record on ``<topic>.dlq``, read from the start."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, enable_auto_commit=False
    )
    try:
        dlq = dead_letter_topic(topic)
        partitions = [TopicPartition(dlq, p) for p in consumer.partitions_for_topic(dlq) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        expected = sum(consumer.end_offsets(partitions).values())
        records: list = []
        deadline = time.monotonic() + WAIT_S
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return sorted(records, key=lambda r: dict(r.headers)["source_offset"])
    finally:
        consumer.close(autocommit=False)


def group() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


# --- envelopes and the registry ----------------------------------------------------------


def test_envelope_parse_accepts_the_design_envelope():
    raw = envelope(3, event_id=42, seats=["A-1-1"])
    parsed = envelope_parse(raw)
    assert (parsed.event_id, parsed.seq, parsed.type) == (42, 3, "test.tallied")
    assert parsed.data == {"seats": ["A-1-1"]}
    assert parsed.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (None, "no value"),
        (
            b'{"id": "x", "type": "t", "event_id": "7", "seq": 1, '
            b'"occurred_at": "2026-01-01T00:00:00Z", "data": {}}',
            "event_id must be",
        ),
        (
            b'{"id": "x", "type": "t", "event_id": 7, "seq": true, '
            b'"occurred_at": "2026-01-01T00:00:00Z", "data": {}}',
            "seq must be",
        ),
        (
            b'{"id": "x", "type": "t", "event_id": 7, "seq": 1, '
            b'"occurred_at": "2026-01-01T00:00:00", "data": {}}',
            "with a zone",
        ),
        (b'{"id": "x", "type": "t", "event_id": 7, "seq": 1, "occurred_at": "z"}', "data must"),
    ],
)
def test_envelope_parse_refuses_what_is_not_an_envelope(value, problem):
    with pytest.raises(EnvelopeError, match=problem):
        envelope_parse(value)


def test_consumers_are_found_by_name_and_unknown_names_are_refused(tally):
    assert consumer_class_get("test-tally") is TallyConsumer
    assert consumer_class_get("persistence").name == "persistence"  # from its app's module
    with pytest.raises(CommandError, match="no Kafka consumer named 'nope'.*test-tally"):
        call_command("consume_kafka", "nope")

    class Impostor(TallyConsumer):
        pass

    with pytest.raises(ImproperlyConfigured, match="two Kafka consumers"):
        consumer_register(Impostor)


# --- the run loop --------------------------------------------------------------------------


def test_a_batch_and_its_cursors_commit_in_one_transaction(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3, 4, 5)], key=7)
    produce(topic, [envelope(seq, event_id=8) for seq in (1, 2)], key=8)
    consumer = TallyConsumer(group_id=group())

    with running(consumer):
        wait_until(lambda: len(tally_rows(tally)) == 7, "7 rows")

    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3), (7, 4), (7, 5), (8, 1), (8, 2)]
    cursors = dict(
        ProjectionCursor.objects.filter(consumer="test-tally").values_list("event_id", "last_seq")
    )
    assert cursors == {7: 5, 8: 2}
    with connection.cursor() as cursor:
        # xmin is the transaction that last wrote the cursor row: the very one that wrote
        # the event's last tally row.
        cursor.execute(
            f"SELECT c.event_id FROM core_projectioncursor c JOIN {tally} t "  # noqa: S608
            "ON t.event_id = c.event_id AND t.seq = c.last_seq "
            "WHERE c.consumer = 'test-tally' AND c.xmin::text::bigint = t.txid % 4294967296"
        )
        assert sorted(row[0] for row in cursor.fetchall()) == [7, 8]
    assert sum(r.applied for r in consumer.results) == 7


def test_a_crash_after_the_db_commit_redelivers_and_the_result_stays_exact(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3)])
    group_id = group()

    crashing = TallyConsumer(group_id=group_id, crash_before_offsets_commit=True)
    with running(crashing) as run:
        run["thread"].join(WAIT_S)
    assert isinstance(run["error"], SimulatedCrash)
    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3)]  # the transaction had committed
    assert committed_offset(group_id, topic) is None  # ... the offsets had not

    produce(topic, [envelope(4)])
    restarted = TallyConsumer(group_id=group_id)
    with running(restarted):
        wait_until(lambda: len(tally_rows(tally)) == 4, "the message after the crash")
        wait_until(lambda: committed_offset(group_id, topic) == 4, "the offsets commit")

    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3), (7, 4)]
    # The three were really delivered again, and skipped by the cursor.
    assert sum(r.duplicates for r in restarted.results) == 3
    assert sum(r.applied for r in restarted.results) == 1


def test_replaying_everything_in_a_new_group_changes_nothing(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3)])
    with running(TallyConsumer(group_id=group())):
        wait_until(lambda: len(tally_rows(tally)) == 3, "3 rows")
    cursor_before = ProjectionCursor.objects.get(consumer="test-tally", event_id=7)

    replay = TallyConsumer(group_id=group())
    with running(replay):
        wait_until(lambda: sum(r.duplicates for r in replay.results) == 3, "the replay")

    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3)]
    assert sum(r.applied for r in replay.results) == 0
    cursor_after = ProjectionCursor.objects.get(consumer="test-tally", event_id=7)
    assert cursor_after.last_seq == cursor_before.last_seq == 3


def test_poison_messages_go_to_the_dead_letter_topic_and_the_rest_is_applied(topic, tally):
    not_json = b'{"id": "broken'
    poison = envelope(2, poison=True)
    produce(topic, [envelope(1), not_json, poison, envelope(3)])
    group_id = group()
    consumer = TallyConsumer(group_id=group_id)

    with running(consumer):
        wait_until(lambda: committed_offset(group_id, topic) == 4, "the whole topic")

    # Seq 1 shared a batch with the poison: the batch's first attempt was rolled back, so it
    # is there once, from the message-by-message retry.
    assert tally_rows(tally) == [(7, 1), (7, 3)]
    assert ProjectionCursor.objects.get(consumer="test-tally", event_id=7).last_seq == 3
    assert sum(r.dead_letters for r in consumer.results) == 2

    letters = dead_letters(topic)
    assert [r.value for r in letters] == [not_json, poison]
    first, second = (dict(r.headers) for r in letters)
    assert first["error"].startswith(b"EnvelopeError: not UTF-8 JSON")
    assert second["error"] == b"ValueError: cannot apply seq 2"
    assert (first["source_topic"], first["source_offset"]) == (topic.encode(), b"1")
    assert (second["source_offset"], second["consumer"]) == (b"2", b"test-tally")
    assert all(r.key == b"7" for r in letters)


def test_a_database_outage_retries_the_batch_instead_of_dead_lettering_it(topic, tally):
    produce(topic, [envelope(1), envelope(2)])
    group_id = group()
    consumer = TallyConsumer(group_id=group_id, transient_failures=2)

    with running(consumer):
        wait_until(lambda: committed_offset(group_id, topic) == 2, "the batch after retries")

    assert consumer.transient_failures == 0
    assert tally_rows(tally) == [(7, 1), (7, 2)]
    assert dead_letters(topic) == []


def test_a_seq_gap_is_logged_and_still_applied(topic, tally, caplog):
    produce(topic, [envelope(1), envelope(2), envelope(5)])
    with (
        caplog.at_level(logging.WARNING, logger="apps.core.consumers"),
        running(TallyConsumer(group_id=group())),
    ):
        wait_until(lambda: len(tally_rows(tally)) == 3, "3 rows")

    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 5)]
    assert "event 7 jumps from seq 2 to 5 (2 missing)" in caplog.text


def test_a_stop_during_a_batch_finishes_and_commits_it_then_closes(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3)])
    group_id = group()
    stop = threading.Event()
    consumer = TallyConsumer(group_id=group_id, stop_during_first_batch=stop)

    # In this thread: the stop arrives while the first batch is being applied.
    consumer.run(stop)

    assert len(consumer.results) == 1
    rows = tally_rows(tally)
    assert rows == [(7, seq) for seq in range(1, len(rows) + 1)]
    assert committed_offset(group_id, topic) == len(rows)


def test_the_command_runs_a_consumer_until_sigterm(topic, tally):
    produce(topic, [envelope(1), envelope(2)])
    signalled = threading.Event()

    def terminate_once_applied() -> None:
        wait_until(lambda: len(tally_rows(tally)) == 2, "2 rows")
        connections.close_all()  # this thread's
        signalled.set()
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_once_applied, daemon=True)
    killer.start()
    call_command("consume_kafka", "test-tally")  # returns only once stopped
    killer.join(WAIT_S)

    assert signalled.is_set()
    assert tally_rows(tally) == [(7, 1), (7, 2)]
    assert committed_offset("seats-test-tally", topic) == 2
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


def test_a_dead_letter_log_line_names_the_envelope_and_the_request_behind_it(topic, tally, caplog):
    poison = json.loads(envelope(2, poison=True))
    poison["request_id"] = "req-from-the-command"
    produce(topic, [envelope(1), envelope_encode(poison)])
    caplog.handler.addFilter(ContextFilter())  # as the console handler has it (settings)
    with (
        caplog.at_level(logging.ERROR, logger="apps.core.consumers"),
        running(TallyConsumer(group_id=group())),
    ):
        wait_until(lambda: len(tally_rows(tally)) == 1 and caplog.records, "the dead letter")

    [line] = [r for r in caplog.records if "dead-letter topic" in r.getMessage()]
    assert (line.envelope_id, line.request_id) == (poison["id"], "req-from-the-command")


def test_batches_are_counted_in_the_metrics(topic, tally):
    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"consumer": "test-tally", **labels}) or 0.0

    before = (
        count("seats_consumer_messages_total", result="applied"),
        count("seats_consumer_messages_total", result="dead_letter"),
        count("seats_consumer_batch_size_count"),
    )
    produce(topic, [envelope(1), envelope(2, poison=True), envelope(3)])
    group_id = group()
    with running(TallyConsumer(group_id=group_id)):
        wait_until(lambda: committed_offset(group_id, topic) == 3, "the whole topic")

    after = (
        count("seats_consumer_messages_total", result="applied"),
        count("seats_consumer_messages_total", result="dead_letter"),
        count("seats_consumer_batch_size_count"),
    )
    assert after[0] - before[0] == 2
    assert after[1] - before[1] == 1
    assert after[2] > before[2]
