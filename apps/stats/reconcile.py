"""Compare the write side (Redis) with the projections that follow it (Postgres).

Redis decides; the persistence rows and the stats are derived from its events. Once the
consumers have caught up, every difference found here is a bug or lost events; the
repairs (``manage.py reconcile --repair``) act on the same comparisons.
"""

from apps.core.projections import Repair
from apps.persistence.selectors import event_reserved_seats, event_revenue
from apps.persistence.services import reservations_differences
from apps.persistence.workers import PersistenceWorker
from apps.reservations.redis.inventory import FullSnapshot
from apps.reservations.selectors import inventory_snapshot_full_get
from apps.stats.models import EventStats
from apps.stats.services import snapshot_counts, stats_differences
from apps.stats.workers import StatsWorker


def event_reconcile(*, event_id: int) -> list[str]:
    """Every difference between Redis, the reservation rows and the stats; [] when none."""
    snapshot = inventory_snapshot_full_get(event_id=event_id)
    problems = _seat_differences(event_id, snapshot)
    problems += reservations_differences(event_id=event_id, snapshot=snapshot)
    expected = snapshot_counts(event_id=event_id, snapshot=snapshot)
    problems += stats_differences(event_id=event_id, seq=snapshot.seq, expected=expected)
    stats = EventStats.objects.filter(event_id=event_id).first()
    if stats is not None:
        revenue = event_revenue(event_id=event_id)
        if stats.revenue != revenue:
            problems.append(f"stats: revenue is {stats.revenue}, reservation rows say {revenue}")
    return problems


def _seat_differences(event_id: int, snapshot: FullSnapshot) -> list[str]:
    """Redis' reserved seats against the active ReservedSeat rows: no seat sold twice,
    none sold without a record."""
    problems = []
    in_redis = {seat: value[2:] for seat, value in snapshot.state.items() if value.startswith("r:")}
    in_db = event_reserved_seats(event_id=event_id)
    for seat in sorted(in_redis.keys() | in_db.keys()):
        redis_ref, db_ref = in_redis.get(seat), in_db.get(seat)
        if redis_ref == db_ref:
            continue
        if db_ref is None:
            problems.append(f"seat {seat}: reserved ({redis_ref}) in Redis, no reservation row")
        elif redis_ref is None:
            state = snapshot.seat_state(seat)[0]
            problems.append(f"seat {seat}: reservation row {db_ref}, but {state} in Redis")
        else:
            problems.append(f"seat {seat}: reservation {redis_ref} in Redis, {db_ref} in rows")
    return problems


def projections_repair(*, event_id: int) -> list[tuple[str, Repair]]:
    """Repair the event's reservation rows, then its stats, from Redis: each projection's
    own repair under its worker's cursor lock (ProjectionWorker.projection_repair), so it
    is safe while the workers run. Returns (worker name, what its repair did) of each.

    The stats worker built here publishes the event's ``stats.updated`` when it is closed.
    """
    repairs = []
    for worker_class in (PersistenceWorker, StatsWorker):
        worker = worker_class()
        try:
            repairs.append((worker.name, worker.projection_repair(event_id)))
        finally:
            worker.close()
    return repairs
