"""The seat map snapshot: every seat's state, consistent with one seq, from Redis."""

from collections import defaultdict
from dataclasses import dataclass

from apps.reservations.best_available import SeatPlace
from apps.reservations.selectors import (
    catalog_cached,
    event_seat_places,
    event_sections,
    inventory_snapshot_get,
)

# One character per seat keeps a 50,000-seat map to a few hundred KB before gzip.
STATE_CODES = {"free": "f", "held": "h", "mine": "m", "reserved": "r", "blocked": "b"}


@dataclass(frozen=True)
class SeatMap:
    event_id: int
    seq: int
    sale_status: str
    sections: list[dict]
    held_by: dict[str, list[str]]  # buyer → the seats of their live holds


@catalog_cached
def _places_in_map_order(event_id: int) -> list[SeatPlace]:
    """The event's seats by section, row and number (cached like event_seat_places, which
    it sorts: once per process, not once per snapshot)."""
    places, _ = event_seat_places(event_id=event_id)
    # (len, label) sorts "2" before "10" and "Z" before "AA", as rows run in a hall.
    return sorted(places, key=lambda p: (p.section_id, len(p.row), p.row, p.number))


def seat_map_get(*, event_id: int, buyer: str | None, section_id: int | None = None) -> SeatMap:
    """Sections → rows → seat numbers and a state string, one character per seat.

    ``buyer``'s own holds show as "m" (mine), everyone else's as "h"; ``held_by`` says
    whose they are, for the sockets' shared snapshot (apps/gateway/snapshots.py). Raises
    SaleNotOpen for an event whose seats are not in the live inventory.
    """
    snapshot = inventory_snapshot_get(event_id=event_id)
    names = event_sections(event_id=event_id)
    rows: dict[int, dict[str, list]] = defaultdict(dict)
    held_by: dict[str, list[str]] = defaultdict(list)
    for place in _places_in_map_order(event_id):
        if section_id is not None and place.section_id != section_id:
            continue
        state, ref = snapshot.seat_state(place.key)
        if state == "held" and ref is not None:  # a held seat always names its hold
            holder = snapshot.holds[ref]["holder"]
            held_by[holder].append(place.key)
            if holder == buyer:
                state = "mine"
        row = rows[place.section_id].setdefault(place.row, [[], []])
        row[0].append(place.number)
        row[1].append(STATE_CODES[state])
    sections = [
        {
            "section_id": sid,
            "name": names[sid],
            "rows": [
                {"row": label, "numbers": numbers, "states": "".join(states)}
                for label, (numbers, states) in section_rows.items()
            ],
        }
        for sid, section_rows in sorted(rows.items(), key=lambda item: names[item[0]])
    ]
    return SeatMap(event_id, snapshot.seq, snapshot.status, sections, dict(held_by))
