"""The Kafka client works against the broker the tests run with (Tansu when embedded).

Each test uses its own topic and group names, so runs never see each other's messages. Topics are
created by the first produce (the broker auto-creates them). No Django needed.
"""

import os
import socket
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

BOOTSTRAP_SERVERS = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")

# The broker waits about half the session timeout for more members before it completes a group
# join: with the default 45 s that is ~23 s per join on Tansu. 6 s is the lowest session timeout
# Apache Kafka accepts by default (group.min.session.timeout.ms), and makes a join take ~3 s.
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


@pytest.fixture(scope="module", autouse=True)
def _broker_answers():
    # Without a broker every client call retries for a long while: say what is wrong at once.
    host, _, port = BOOTSTRAP_SERVERS.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as error:
        pytest.fail(
            f"no Kafka broker at {BOOTSTRAP_SERVERS} ({error}); run the tests under "
            "scripts/backing_services.py, which starts one"
        )


@pytest.fixture
def topic():
    return f"broker-test-{uuid.uuid4().hex}"


@pytest.fixture
def producer():
    # acks="all" and idempotence are kafka-python's defaults; spelled out, as the relay relies
    # on both.
    producer = KafkaProducer(
        bootstrap_servers=BOOTSTRAP_SERVERS, acks="all", enable_idempotence=True
    )
    yield producer
    producer.close()


def poll_records(consumer, count, timeout=30.0):
    """Poll until count records arrived (or timeout): a poll may return fewer, or none."""
    records = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=200, max_records=count - len(records))
        records += [record for batch in batches.values() for record in batch]
    return records


def group_consumer(topic, group):
    return KafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP_SERVERS,
        group_id=group,
        auto_offset_reset="earliest",  # the topic exists before the group's first join
        enable_auto_commit=False,
        **FAST_GROUP,
    )


def test_a_produced_message_is_consumed_with_its_key_and_headers(topic, producer):
    sent = producer.send(topic, key=b"42", value=b'{"seq": 1}', headers=[("type", b"seat.held")])
    metadata = sent.get(timeout=10)

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP_SERVERS, enable_auto_commit=False)
    partition = TopicPartition(topic, metadata.partition)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    try:
        records = poll_records(consumer, 1)
    finally:
        consumer.close()

    assert [(r.key, r.value, r.headers) for r in records] == [
        (b"42", b'{"seq": 1}', [("type", b"seat.held")])
    ]
    assert records[0].offset == metadata.offset


def test_messages_with_one_key_keep_their_order_on_one_partition(topic, producer):
    sent = [producer.send(topic, key=b"42", value=str(seq).encode()) for seq in range(5)]
    partitions = {future.get(timeout=10).partition for future in sent}

    assert len(partitions) == 1


def test_a_group_resumes_after_its_committed_offset(topic, producer):
    for seq in range(3):
        producer.send(topic, key=b"42", value=str(seq).encode(), partition=0)
    producer.flush()
    group = f"broker-test-{uuid.uuid4().hex}"

    first = group_consumer(topic, group)
    try:
        consumed = poll_records(first, 1)
        first.commit()  # the position after the record just consumed
        committed = first.committed(TopicPartition(topic, 0))
    finally:
        first.close()
    second = group_consumer(topic, group)
    try:
        resumed = poll_records(second, 2)
    finally:
        second.close()

    assert [r.value for r in consumed] == [b"0"]
    assert committed == 1
    assert [(r.offset, r.value) for r in resumed] == [(1, b"1"), (2, b"2")]
