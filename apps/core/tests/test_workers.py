"""The Kafka workers' framework (apps/core/workers.py, apps/core/projections.py) against the
real broker and Postgres (docs/architecture.md, Consumers).

A tiny "tally" projection inserts one row per envelope into a table of its own, with no
idempotency of its own: every duplicate that got through would show as an extra row, so
exactness below is the framework's doing (cursor + offsets after commit).
"""

import json
import logging
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from apps.core import workers
from apps.core.envelopes import Envelope
from apps.core.kafka import envelope_encode, kafka_producer_create, topics_ensure
from apps.core.logs import ContextFilter
from apps.core.models import ProjectionCursor
from apps.core.projections import ProjectionWorker, Repair, dead_letter_topic
from apps.core.redis import redis_client_get
from apps.core.tests.pipeline import WAIT_S, topic_records, wait_until
from apps.core.tests.test_envelopes import envelope
from apps.core.workers import KafkaWorker, worker_class_get, worker_register
from apps.reservations.outbox import outbox_envelopes
from apps.reservations.redis.keys import event_keys

# The worker runs in its own thread with its own connection: it must see, and commit,
# real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


class SimulatedCrash(Exception):
    pass


class TallyWorker(ProjectionWorker):
    name = "test-tally"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)
    table = ""  # set per test by the ``tally`` fixture

    def __init__(
        self,
        *,
        crash_before_offsets_commit: bool = False,
        transient_failures: int = 0,
        stop_during_first_batch: threading.Event | None = None,
        repair_seq: int = 0,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.crash_before_offsets_commit = crash_before_offsets_commit
        self.transient_failures = transient_failures
        self.stop_during_first_batch = stop_during_first_batch
        self.repair_seq = repair_seq
        self.repaired: list[int] = []
        self.results: list = []

    def batch_apply(self, envelopes: list[Envelope]) -> None:
        if self.stop_during_first_batch is not None:
            self.stop_during_first_batch.set()
            self.stop_during_first_batch = None
        if self.transient_failures:
            self.transient_failures -= 1
            raise OperationalError("server closed the connection unexpectedly (simulated)")
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            (txid,) = cursor.fetchone()
            for envelope in envelopes:
                if envelope.data.get("poison"):
                    raise ValueError(f"cannot apply seq {envelope.seq}")
                cursor.execute(
                    f"INSERT INTO {self.table} (event_id, seq, txid) VALUES (%s, %s, %s)",  # noqa: S608 - table name is the fixture's
                    [envelope.event_id, envelope.seq, txid],
                )

    def envelopes_missing(
        self, event_id: int, *, after_seq: int, before_seq: int
    ) -> list[Envelope]:
        return outbox_envelopes(event_id=event_id, after_seq=after_seq, before_seq=before_seq)

    def event_repair(self, event_id: int) -> Repair:
        """Stands for rebuilding the rows from the write side: one row at ``repair_seq``."""
        self.repaired.append(event_id)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} (event_id, seq, txid) VALUES (%s, %s, 0)",  # noqa: S608
                [event_id, self.repair_seq],
            )
        return Repair(seq=self.repair_seq, changes=["tally rebuilt"])

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
    monkeypatch.setattr(TallyWorker, "table", table)
    # Registered for this test only (the registry is restored after it).
    monkeypatch.setattr(workers, "_REGISTRY", dict(workers._REGISTRY))
    worker_register(TallyWorker)
    yield table
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")


def tally_rows(table: str) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id, seq FROM {table} ORDER BY event_id, seq, id")  # noqa: S608
        return [tuple(row) for row in cursor.fetchall()]


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
def running(worker: KafkaWorker) -> Iterator[dict]:
    """Run ``worker`` in a thread; on exit stop it and wait. ``["error"]`` is its crash."""
    stop = threading.Event()
    outcome: dict = {"stop": stop, "error": None}

    def target() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"worker-{worker.name}", daemon=True)
    thread.start()
    outcome["thread"] = thread
    try:
        yield outcome
    finally:
        stop.set()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the worker did not stop"


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
    """Every record on ``<topic>.dlq``, in the order of the records they stand for."""
    letters = topic_records(dead_letter_topic(topic))
    return sorted(letters, key=lambda r: int(dict(r.headers)["source_offset"]))


def group() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


# --- the registry --------------------------------------------------------------------------


def test_workers_are_found_by_name_and_unknown_names_are_refused(tally):
    assert worker_class_get("test-tally") is TallyWorker
    assert worker_class_get("persistence").name == "persistence"  # from its app's module
    assert worker_class_get("gateway").name == "gateway"
    with pytest.raises(CommandError, match="no Kafka worker named 'nope'.*test-tally"):
        call_command("consume_kafka", "nope")

    class Impostor(TallyWorker):
        pass

    with pytest.raises(ImproperlyConfigured, match="two Kafka workers"):
        worker_register(Impostor)


# --- the run loop --------------------------------------------------------------------------


def test_a_batch_and_its_cursors_commit_in_one_transaction(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3, 4, 5)], key=7)
    produce(topic, [envelope(seq, event_id=8) for seq in (1, 2)], key=8)
    worker = TallyWorker(group_id=group())

    with running(worker):
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
    assert sum(r.applied for r in worker.results) == 7


def test_a_crash_after_the_db_commit_redelivers_and_the_result_stays_exact(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3)])
    group_id = group()

    crashing = TallyWorker(group_id=group_id, crash_before_offsets_commit=True)
    with running(crashing) as run:
        run["thread"].join(WAIT_S)
    assert isinstance(run["error"], SimulatedCrash)
    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3)]  # the transaction had committed
    assert committed_offset(group_id, topic) is None  # ... the offsets had not

    produce(topic, [envelope(4)])
    restarted = TallyWorker(group_id=group_id)
    with running(restarted):
        wait_until(lambda: len(tally_rows(tally)) == 4, "the message after the crash")
        wait_until(lambda: committed_offset(group_id, topic) == 4, "the offsets commit")

    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3), (7, 4)]
    # The three were really delivered again, and skipped by the cursor.
    assert sum(r.duplicates for r in restarted.results) == 3
    assert sum(r.applied for r in restarted.results) == 1


def test_replaying_everything_in_a_new_group_changes_nothing(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3)])
    with running(TallyWorker(group_id=group())):
        wait_until(lambda: len(tally_rows(tally)) == 3, "3 rows")
    cursor_before = ProjectionCursor.objects.get(consumer="test-tally", event_id=7)

    replay = TallyWorker(group_id=group())
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
    worker = TallyWorker(group_id=group_id)

    with running(worker):
        wait_until(lambda: committed_offset(group_id, topic) == 4, "the whole topic")

    # Seq 1 shared a batch with the poison: the batch's first attempt was rolled back, so it
    # is there once, from the message-by-message retry.
    assert tally_rows(tally) == [(7, 1), (7, 3)]
    assert ProjectionCursor.objects.get(consumer="test-tally", event_id=7).last_seq == 3
    assert sum(r.dead_letters for r in worker.results) == 2

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
    worker = TallyWorker(group_id=group_id, transient_failures=2)

    with running(worker):
        wait_until(lambda: committed_offset(group_id, topic) == 2, "the batch after retries")

    assert worker.transient_failures == 0
    assert tally_rows(tally) == [(7, 1), (7, 2)]
    assert dead_letters(topic) == []


def outbox_keep(values: list[bytes], event_id: int = 7) -> None:
    """Keep envelopes in the event's outbox as the inventory scripts append them."""
    client = redis_client_get()
    for value in values:
        seq = json.loads(value)["seq"]
        client.xadd(event_keys(event_id).outbox, {"seq": seq, "envelope": value.decode()})


def test_a_hole_in_an_events_seq_is_filled_from_the_outbox_before_going_on(topic, tally, caplog):
    kept = [envelope(seq) for seq in (1, 2, 3, 4, 5)]
    outbox_keep(kept)
    produce(topic, [kept[0], kept[1], kept[4]])  # the log lost 3 and 4
    gaps = REGISTRY.get_sample_value(
        "seats_projection_gaps_total", {"consumer": "test-tally", "outcome": "filled"}
    )
    with (
        caplog.at_level(logging.WARNING, logger="apps.core.projections"),
        running(TallyWorker(group_id=group())),
    ):
        wait_until(lambda: len(tally_rows(tally)) == 5, "5 rows")

    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 3), (7, 4), (7, 5)]  # in seq order
    assert "event 7 jumps from seq 2 to 5; the 2 missing read from the outbox" in caplog.text
    assert (
        REGISTRY.get_sample_value(
            "seats_projection_gaps_total", {"consumer": "test-tally", "outcome": "filled"}
        )
        == (gaps or 0) + 1
    )


def test_a_hole_the_outbox_cannot_fill_repairs_the_event_and_never_applies_past_it(
    topic, tally, caplog
):
    produce(topic, [envelope(1), envelope(2)])
    worker = TallyWorker(group_id=group(), repair_seq=6)
    with (
        caplog.at_level(logging.WARNING, logger="apps.core.projections"),
        running(worker),
    ):
        wait_until(lambda: len(tally_rows(tally)) == 2, "2 rows")
        outbox_keep([envelope(4)])  # 3 is gone everywhere
        produce(topic, [envelope(5), envelope(6), envelope(7)])
        wait_until(lambda: len(tally_rows(tally)) == 4, "the repair and seq 7")

    # The repair stands for everything up to seq 6; 5 and 6 are not applied on top of it.
    assert tally_rows(tally) == [(7, 1), (7, 2), (7, 6), (7, 7)]
    assert worker.repaired == [7]
    assert ProjectionCursor.objects.get(consumer="test-tally", event_id=7).last_seq == 7
    assert "jumps from seq 2 to 5 and the missing envelopes are gone; repaired" in caplog.text
    assert "tally rebuilt" in caplog.text  # what the repair said it changed


def test_a_repair_by_hand_moves_the_cursor_with_it(tally):
    worker = TallyWorker(group_id=group(), repair_seq=9)
    repair = worker.projection_repair(7)
    assert repair.seq == 9
    assert ProjectionCursor.objects.get(consumer="test-tally", event_id=7).last_seq == 9


def test_a_stop_during_a_batch_finishes_and_commits_it_then_closes(topic, tally):
    produce(topic, [envelope(seq) for seq in (1, 2, 3)])
    group_id = group()
    stop = threading.Event()
    worker = TallyWorker(group_id=group_id, stop_during_first_batch=stop)

    # In this thread: the stop arrives while the first batch is being applied.
    worker.run(stop)

    assert len(worker.results) == 1
    rows = tally_rows(tally)
    assert rows == [(7, seq) for seq in range(1, len(rows) + 1)]
    assert committed_offset(group_id, topic) == len(rows)


class WaitsRecorded(threading.Event):
    """A stop event that records how long each wait of the worker's loop asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_a_worker_lingers_after_a_batch_that_read_to_the_end_never_while_catching_up(topic, tally):
    class Lingering(TallyWorker):
        max_batch = 10
        batch_linger_ms = 123

    produce(topic, [envelope(seq) for seq in range(1, 36)])
    worker = Lingering(group_id=group())
    stop = WaitsRecorded()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(tally_rows(tally)) == 35, "35 rows")
        wait_until(lambda: 0.123 in stop.waits, "a linger")
    finally:
        stop.set()
        thread.join(WAIT_S)

    sizes = [r.applied for r in worker.results]
    assert sum(sizes) == 35 and max(sizes) == 10
    # Full batches of a backlog went on at once; only the one that reached the log's end
    # lingered (and nothing came after it).
    assert stop.waits.count(0.123) == 1


def test_the_command_runs_a_worker_until_sigterm(topic, tally):
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
        caplog.at_level(logging.ERROR, logger="apps.core.projections"),
        running(TallyWorker(group_id=group())),
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
    with running(TallyWorker(group_id=group_id)):
        wait_until(lambda: committed_offset(group_id, topic) == 3, "the whole topic")

    after = (
        count("seats_consumer_messages_total", result="applied"),
        count("seats_consumer_messages_total", result="dead_letter"),
        count("seats_consumer_batch_size_count"),
    )
    assert after[0] - before[0] == 2
    assert after[1] - before[1] == 1
    assert after[2] > before[2]
