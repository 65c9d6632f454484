"""Reads of the stats projection: the Redis hot copy first, then Postgres, then the catalog."""

from collections import Counter

from apps.reservations.selectors import event_public_get, event_seat_places, event_sections
from apps.stats.cache import stats_cache_get
from apps.stats.models import EventStats, SectionStats

COUNT_FIELDS = ("total", "free", "held", "reserved", "blocked")


def event_stats_get(*, event_id: int) -> dict | None:
    """The event's stats body (the API's JSON); None for an unknown or draft event.

    An event on sale whose first seat event the projector has not seen yet is all free, at
    seq 0 (the seq every event starts at when it goes on sale).
    """
    if event_public_get(event_id=event_id) is None:
        return None
    return (
        stats_cache_get(event_id=event_id)
        or stats_body_from_db(event_id=event_id)
        or stats_body_initial(event_id=event_id)
    )


def section_stats_get(*, event_id: int, section_id: int) -> dict | None:
    """One section's counts with ``event_id`` and ``seq``; None for an unknown one."""
    body = event_stats_get(event_id=event_id)
    if body is None:
        return None
    for section in body["sections"]:
        if section["section_id"] == section_id:
            return {"event_id": body["event_id"], "seq": body["seq"], **section}
    return None


def stats_body_from_db(*, event_id: int) -> dict | None:
    """The body as the projection's rows hold it (the source of truth); None before any."""
    stats = EventStats.objects.filter(event_id=event_id).first()
    if stats is None:
        return None
    names = event_sections(event_id=event_id)
    sections = [
        {"section_id": row.section_id, "name": names.get(row.section_id, ""), **_counts(row)}
        for row in SectionStats.objects.filter(event_id=event_id)
    ]
    return _body(event_id, stats.last_seq, _counts(stats), sections)


def stats_body_initial(*, event_id: int) -> dict:
    """Every seat free, from the catalog: the stats of an event at seq 0."""
    places, _ = event_seat_places(event_id=event_id)
    per_section = Counter(place.section_id for place in places)
    sections = [
        {
            "section_id": section_id,
            "name": name,
            **_counts_free(per_section[section_id]),
        }
        for section_id, name in event_sections(event_id=event_id).items()
    ]
    return _body(event_id, 0, _counts_free(len(places)), sections)


def _counts(row: EventStats | SectionStats) -> dict:
    return {
        **{name: getattr(row, name) for name in COUNT_FIELDS},
        "revenue": f"{row.revenue:.2f}",
    }


def _counts_free(total: int) -> dict:
    return {
        "total": total,
        "free": total,
        "held": 0,
        "reserved": 0,
        "blocked": 0,
        "revenue": "0.00",
    }


def _body(event_id: int, seq: int, counts: dict, sections: list[dict]) -> dict:
    return {
        "event_id": event_id,
        "seq": seq,
        **counts,
        "sections": sorted(sections, key=lambda s: (s["name"], s["section_id"])),
    }
