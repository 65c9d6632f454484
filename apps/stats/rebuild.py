"""Rebuild the stats projection from the whole ``seat-events`` topic, and from Redis where the
topic lost envelopes (docs/architecture.md, Stats: ``manage.py rebuild_projections``, and
Repair)."""

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from kafka import KafkaConsumer, TopicPartition

from apps.core.kafka import BOOTSTRAP_TIMEOUT_MS, topics_ensure
from apps.core.models import ProjectionCursor
from apps.core.projections import Repair
from apps.reservations.errors import SaleNotOpen
from apps.reservations.models import Event
from apps.reservations.selectors import inventory_event_ids_get, inventory_snapshot_get
from apps.stats.cache import stats_cache_clear
from apps.stats.models import EventStats, SectionStats
from apps.stats.workers import StatsWorker

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 1_000
METADATA_WAIT_S = 30


@dataclass
class Rebuilt:
    """What a rebuild did."""

    read: int  # messages replayed
    events: int  # events with stats afterwards
    # Events whose stats the log could not bring up to their seq in Redis, and what their
    # repair from Redis' state did.
    repaired: dict[int, Repair] = field(default_factory=dict)


def stats_rebuild() -> Rebuilt:
    """Drop the stats, replay every partition from its first to its current last offset,
    then repair from Redis every event the log left behind.

    Stop the ``stats`` worker first: it would write the rows this deletes. Each batch is
    applied as the worker applies it (cursors, dead letters, and the holes in an event's
    seq filled from the outbox or repaired), and the final stats.updated of every event is
    published at the end.
    """
    with transaction.atomic():
        SectionStats.objects.all().delete()
        EventStats.objects.all().delete()
        ProjectionCursor.objects.filter(consumer=StatsWorker.name).delete()
    stats_cache_clear()
    projector = StatsWorker()
    try:
        read = _replay(projector, settings.KAFKA_TOPIC_SEAT_EVENTS)
        repaired = _stats_catch_up(projector)
    finally:
        projector.close()  # publishes the final stats.updated of every event rebuilt
    return Rebuilt(read=read, events=EventStats.objects.count(), repaired=repaired)


def _replay(projector: StatsWorker, topic: str) -> int:
    """Apply every message of ``topic`` with ``projector``; returns how many were read."""
    topics_ensure([topic])
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
                return read
    finally:
        reader.close(autocommit=False)


def _stats_catch_up(projector: StatsWorker) -> dict[int, Repair]:
    """Repair every event with a sale opened whose stats are behind its seq in Redis.

    The replay sees a hole in an event's seq only before a later envelope of it; a log
    that lost an event's last envelopes, or all of them (a broker restarted empty, a
    re-created topic, retention), shows none, and would leave its stats wrong or missing.
    Events not yet published (the relay's backlog) are repaired too: harmless, the live
    worker skips what the repair covered.
    """
    cursors = dict(
        ProjectionCursor.objects.filter(consumer=projector.name).values_list("event_id", "last_seq")
    )
    indexed = inventory_event_ids_get()
    repaired = {}
    for event_id in (
        Event.objects.filter(pk__in=indexed).order_by("pk").values_list("pk", flat=True)
    ):
        try:
            seq = inventory_snapshot_get(event_id=event_id).seq
        except SaleNotOpen:
            continue  # indexed, but its opening never loaded it: nothing happened there
        if seq > cursors.get(event_id, 0):
            repaired[event_id] = projector.projection_repair(event_id)
    return repaired


def _partitions(reader: KafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + METADATA_WAIT_S
    while True:
        found = reader.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partitions for topic {topic}")
        time.sleep(0.1)
