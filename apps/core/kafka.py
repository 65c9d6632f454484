"""Kafka helpers every process shares: one producer configuration, topic creation, and the
envelope's bytes (docs/architecture.md, Events on Kafka).

The workers that read the topics are apps/core/workers.py; the envelope's type and parsing
are apps/core/envelopes.py.
"""

import json
from typing import Any

from django.conf import settings
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import TopicAlreadyExistsError, for_code
from kafka.serializer import Serializer

# Partitions bound how many copies of one consumer work in parallel. Every event's messages
# share one partition (the key is the event id), so more partitions never reorder an event.
TOPIC_PARTITIONS = 6

# A producer or admin client gives up connecting after this long, so a caller with the broker
# down gets an error it can back off on instead of blocking for the client's default 30 s.
BOOTSTRAP_TIMEOUT_MS = 5_000


class KeySerializer(Serializer):
    """Keys are event ids: an int or a str becomes its decimal text in UTF-8."""

    def serialize(self, topic: str, headers: list[tuple[str, bytes]], data: object) -> bytes | None:
        if data is None or isinstance(data, bytes):
            return data
        return str(data).encode("utf-8")


def kafka_producer_create(**overrides: Any) -> KafkaProducer:
    """A producer for ordered, acknowledged delivery; keys are str, values are bytes as is."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "key_serializer": KeySerializer(),
        "value_serializer": None,  # values are already-encoded envelopes
        # A send counts only once every in-sync replica has it: the outbox trims on this ack.
        "acks": "all",
        # One request in flight per broker: a retried batch cannot be overtaken by the next
        # one, so each event's messages stay in seq order across transient errors.
        "max_in_flight_requests_per_connection": 1,
        # Retry transient errors until delivery_timeout_ms, not a fixed number of times; the
        # explicit value guards against older kafka-python releases that defaulted to 0.
        "retries": 2_147_483_647,
        # Idempotence would drop duplicate retries, but when the broker forgets a producer id
        # (any restart of an in-memory broker such as Tansu) kafka-python bumps the epoch and
        # fails the batch in flight while later batches go through: a reordering. A duplicate
        # is harmless (consumers dedupe by (event_id, seq)); a reordering is not.
        "enable_idempotence": False,
        # Upper bound for a send to succeed or fail, retries included; callers that wait for
        # acknowledgements (the relay, before it trims) block at most this long.
        "delivery_timeout_ms": 30_000,
        "request_timeout_ms": 10_000,
        # send() blocks this long for metadata when the broker is down, then raises.
        "max_block_ms": 5_000,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        # Reconnect quickly after a broker restart, but never hammer a dead one.
        "reconnect_backoff_ms": 100,
        "reconnect_backoff_max_ms": 5_000,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def topics_ensure(names: list[str], partitions: int = TOPIC_PARTITIONS) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    Existing topics are left exactly as they are (their partition count included).
    """
    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        request_timeout_ms=10_000,
    )
    try:
        result = admin.create_topics(
            # replication_factor -1 takes the broker's default (Kafka >= 2.4, Tansu).
            {name: {"num_partitions": partitions, "replication_factor": -1} for name in names},
            raise_errors=False,
        )
    finally:
        admin.close()
    created = []
    for topic in result["topics"]:
        if not topic["error_code"]:
            created.append(topic["name"])
            continue
        error = for_code(topic["error_code"])
        # Several processes ensure the same topics at start; losing that race is success.
        if error is not TopicAlreadyExistsError:
            raise error(f"cannot create topic {topic['name']}: {topic.get('error_message')}")
    return created


def log_epoch_key() -> str:
    """Redis string: how many times the relay found the broker had lost its log. A worker
    that sees it change reads its partitions again from the beginning: its positions may lie
    past the end of the new log, where nothing would ever reach it (docs/architecture.md,
    "Gaps and repair"). A global key, only ever read or incremented alone."""
    return f"{settings.SEATS_REDIS_PREFIX}:kafka-log-epoch"


def envelope_encode(envelope: dict[str, Any]) -> bytes:
    """The envelope (docs/architecture.md, Events on Kafka) as compact UTF-8 JSON: the
    bytes a Kafka message carries."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
