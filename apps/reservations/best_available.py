"""Best-available seat selection: pure, over the venue's geometry and the taken seats.

The pick is optimistic: the hold script re-checks atomically, and on a conflict the
service picks again from fresh state. So this module may be wrong about availability,
never about who gets a seat.
"""

import math
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SeatPlace:
    key: str
    section_id: int
    category_id: int
    row: str
    number: int
    x: float
    y: float


@dataclass(frozen=True)
class _Candidate:
    strands_a_seat: bool
    distance: float
    seats: tuple[str, ...]


def seats_pick_best(
    *,
    places: Iterable[SeatPlace],
    taken: set[str],
    count: int,
    focal: tuple[float, float],
    spread: int = 1,
    rng: random.Random | None = None,
) -> list[str] | None:
    """Pick ``count`` free seats, or None if fewer are free.

    Preference, in order: all in one row side by side; leaving no single empty seat
    stranded between taken ones (a seat nobody can buy with a friend); closest to the
    focal point. ``spread`` > 1 picks at random among that many best blocks, which is
    how concurrent buyers asking for the same thing stop colliding on retries.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    rows: dict[tuple[int, str], list[SeatPlace]] = defaultdict(list)
    free_places = []
    for place in places:
        rows[(place.section_id, place.row)].append(place)
        if place.key not in taken:
            free_places.append(place)
    if len(free_places) < count:
        return None

    candidates = []
    for row in rows.values():
        row.sort(key=lambda p: p.number)
        for run in _free_runs(row, taken):
            candidates.extend(_blocks(run, count, focal))
    if candidates:
        # Spreading never trades away the orphan rule: it only picks among blocks that
        # strand nobody, when there are any.
        candidates = [c for c in candidates if not c.strands_a_seat] or candidates
        candidates.sort(key=lambda c: c.distance)
        best = candidates[: max(1, spread)]
        return list((rng or random).choice(best).seats)

    # No row has room for the group together: the closest seats, one by one.
    free_places.sort(key=lambda p: math.dist((p.x, p.y), focal))
    return [p.key for p in free_places[:count]]


def _free_runs(row: list[SeatPlace], taken: set[str]) -> Iterable[list[SeatPlace]]:
    """Maximal stretches of free seats with consecutive numbers."""
    run: list[SeatPlace] = []
    for place in row:
        if place.key in taken or (run and place.number != run[-1].number + 1):
            if run:
                yield run
            run = [] if place.key in taken else [place]
        else:
            run.append(place)
    if run:
        yield run


def _blocks(run: list[SeatPlace], count: int, focal: tuple[float, float]) -> list[_Candidate]:
    blocks = []
    for start in range(len(run) - count + 1):
        left, right = start, len(run) - start - count
        seats = run[start : start + count]
        cx = sum(p.x for p in seats) / count
        cy = sum(p.y for p in seats) / count
        blocks.append(
            _Candidate(
                strands_a_seat=left == 1 or right == 1,
                distance=math.dist((cx, cy), focal),
                seats=tuple(p.key for p in seats),
            )
        )
    return blocks
