"""Rebuild the stats projection from the whole ``seat-events`` topic (docs/architecture.md,
Stats: ``manage.py rebuild_projections``)."""

import logging
import time

from django.conf import settings
from django.db import transaction
from kafka import KafkaConsumer, TopicPartition

from apps.core.kafka import BOOTSTRAP_TIMEOUT_MS, topics_ensure
from apps.core.models import ProjectionCursor
from apps.stats.cache import stats_cache_clear
from apps.stats.models import EventStats, SectionStats
from apps.stats.workers import StatsWorker

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 1_000
METADATA_WAIT_S = 30


def stats_rebuild() -> tuple[int, int]:
    """Drop the stats and replay every partition from its first to its current last offset.

    Returns (messages read, events with stats). Stop the ``stats`` worker first: it would
    write the rows this deletes. Each batch is applied as the worker applies it (cursors,
    dead letters), and the final stats.updated of every event is published at the end.
    """
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    with transaction.atomic():
        SectionStats.objects.all().delete()
        EventStats.objects.all().delete()
        ProjectionCursor.objects.filter(consumer=StatsWorker.name).delete()
    stats_cache_clear()
    topics_ensure([topic])
    projector = StatsWorker()
    reader = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        group_id=None,  # no group: no offsets to commit, no rebalance, every partition
        enable_auto_commit=False,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
    )
    read = 0
    try:
        partitions = _partitions(reader, topic)
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        ends = reader.end_offsets(partitions)
        while True:
            polled = reader.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=projector.max_batch)
            records = [r for rs in polled.values() for r in rs]
            if records:
                projector.batch_process(records)
                read += len(records)
            elif all(reader.position(tp) >= ends[tp] for tp in partitions):
                # Past the end offsets and nothing more to fetch. Both, because a broker may
                # under-report the end (Tansu 0.6 gives a batch's base offset + 1); messages
                # published meanwhile are replayed too, and the live worker skips them.
                break
    finally:
        reader.close(autocommit=False)
        projector.close()  # publishes the final stats.updated of every event rebuilt
    return read, EventStats.objects.count()


def _partitions(reader: KafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + METADATA_WAIT_S
    while True:
        found = reader.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partitions for topic {topic}")
        time.sleep(0.1)
