"""Compare the write side (Redis) with the projections that follow it (Postgres).

Redis decides; the persistence rows and the stats are derived from its events. Once the
consumers have caught up, every difference found here is a bug or lost events.
"""

from collections import Counter

from apps.persistence.selectors import event_reserved_seats, event_revenue
from apps.reservations.selectors import event_seat_places, event_sections, inventory_snapshot_get
from apps.stats.models import EventStats, SectionStats

STATES = ("free", "held", "reserved", "blocked")


def event_reconcile(*, event_id: int) -> list[str]:
    """Every difference between Redis, the reservation rows and the stats; [] when none."""
    snapshot = inventory_snapshot_get(event_id=event_id)
    places, _ = event_seat_places(event_id=event_id)
    names = event_sections(event_id=event_id)
    problems: list[str] = []

    # Reservations: Redis' reserved seats against the active ReservedSeat rows.
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

    # Stats: counts against Redis'. A hold past its expiry that the sweep has not ended yet
    # is still held in the event stream, so it is counted held here too.
    section_of = {place.key: place.section_id for place in places}
    redis_counts: dict[int | None, Counter] = {None: Counter()}
    for place in places:
        redis_counts.setdefault(place.section_id, Counter())
        for key in (None, place.section_id):
            redis_counts[key]["total"] += 1
            redis_counts[key]["free"] += 1
    for seat, value in snapshot.state.items():
        state = {"h": "held", "r": "reserved", "b": "blocked"}[value[0]]
        for key in (None, section_of.get(seat)):
            if key in redis_counts:
                redis_counts[key]["free"] -= 1
                redis_counts[key][state] += 1

    stats = EventStats.objects.filter(event_id=event_id).first()
    if stats is None:
        if snapshot.seq:
            problems.append(f"stats: none yet, inventory at seq {snapshot.seq}")
        return problems
    if stats.last_seq != snapshot.seq:
        problems.append(f"stats at seq {stats.last_seq}, inventory at seq {snapshot.seq}")
    rows: dict[int | None, EventStats | SectionStats] = {None: stats}
    rows.update({row.section_id: row for row in SectionStats.objects.filter(event_id=event_id)})
    for key in sorted(redis_counts.keys() | rows.keys(), key=lambda k: (k is not None, k or 0)):
        label = "event" if key is None else f"section {names.get(key, key)}"
        row = rows.get(key)
        if row is None:
            problems.append(f"stats: {label} has no row")
            continue
        expected = redis_counts.get(key, Counter())
        for name in ("total", *STATES):
            if getattr(row, name) != expected[name]:
                problems.append(
                    f"stats: {label} {name} is {getattr(row, name)}, Redis says {expected[name]}"
                )

    revenue = event_revenue(event_id=event_id)
    if stats.revenue != revenue:
        problems.append(f"stats: revenue is {stats.revenue}, reservation rows say {revenue}")
    return problems
