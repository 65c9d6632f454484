"""Best available: the venue's rows as the hold script indexes them, and the reference model.

The pick itself runs inside the hold script (``redis/best.lua``), atomically, over the
row index that ``seat_rows`` describes (docs/architecture.md, Best available). This module
builds those rows when a sale opens, and keeps ``seats_pick_best``: the same rules as a
plain exhaustive search over every block of every row, which the script is tested against.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# A gap in a row's seat numbers (an aisle): never free, so never inside a block.
GAP = ""


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
class SeatRow:
    """One row of one section: seat keys in number order, GAP where numbering skips.

    ``bound`` is the distance from the focal point to the row's bounding box: no block of
    the row can be closer (a block's centre lies inside the box), so the script may rank
    a row it has not looked at yet by its bound.
    """

    id: int
    section_id: int
    category_id: int
    keys: tuple[str, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    bound: float

    @property
    def key(self) -> str:
        """The row's id in Redis, zero-padded: the script breaks ties by comparing these
        as text, which is then the venue's row order."""
        return f"{self.id:06d}"


def seat_rows(places: Iterable[SeatPlace], focal: tuple[float, float]) -> list[SeatRow]:
    """The venue's rows, numbered 1.. in a stable order (section, then row label)."""
    grouped: dict[tuple[int, str], list[SeatPlace]] = defaultdict(list)
    for place in places:
        grouped[(place.section_id, place.row)].append(place)
    rows = []
    for row_id, (section_id, label) in enumerate(sorted(grouped), start=1):
        seats = sorted(grouped[(section_id, label)], key=lambda p: p.number)
        keys, xs, ys = [], [], []
        for before, place in zip([None, *seats], seats, strict=False):
            if before is not None and place.number != before.number + 1:
                keys.append(GAP)
                xs.append(0.0)
                ys.append(0.0)
            keys.append(place.key)
            xs.append(place.x)
            ys.append(place.y)
        dx = max(min(p.x for p in seats) - focal[0], 0.0, focal[0] - max(p.x for p in seats))
        dy = max(min(p.y for p in seats) - focal[1], 0.0, focal[1] - max(p.y for p in seats))
        rows.append(
            SeatRow(
                id=row_id,
                section_id=section_id,
                category_id=seats[0].category_id,
                keys=tuple(keys),
                xs=tuple(xs),
                ys=tuple(ys),
                bound=math.hypot(dx, dy),
            )
        )
    return rows


# --- the reference model ---------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    strands_a_seat: bool
    distance: float
    seats: tuple[str, ...]

    @property
    def rank(self) -> tuple[bool, float]:
        """Lower is better: stranding nobody first, then nearest the focal point."""
        return (self.strands_a_seat, self.distance)


def seats_pick_best(
    *, rows: list[SeatRow], taken: set[str], count: int, focal: tuple[float, float]
) -> list[Block] | None:
    """The blocks the documented rules pick for ``count`` seats, or None if too few are free.

    One block when any row has ``count`` free seats side by side: the best by ``rank``,
    ties to the first row in the venue's order, then the leftmost. Otherwise the group is
    split, greedily: the longest run that is still needed (the best such block), then
    again for the rest.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    taken = set(taken)
    free = sum(1 for row in rows for key in row.keys if key != GAP and key not in taken)
    if free < count:
        return None
    rows = sorted(rows, key=lambda r: r.key)
    blocks = []
    while count:
        size = min(count, _longest_run(rows, taken))
        block = min(
            (b for row in rows for b in row_blocks(row, taken, size, focal)), key=lambda b: b.rank
        )  # min() keeps the first of equals: rows in order, blocks left to right
        blocks.append(block)
        taken.update(block.seats)
        count -= size
    return blocks


def _runs(row: SeatRow, taken: set[str]) -> Iterable[tuple[int, int]]:
    """(start, length) of each maximal stretch of free seats, by position in the row."""
    start = None
    for pos, key in enumerate([*row.keys, GAP]):
        free = key != GAP and key not in taken
        if free and start is None:
            start = pos
        elif not free and start is not None:
            yield start, pos - start
            start = None


def _longest_run(rows: list[SeatRow], taken: set[str]) -> int:
    return max((length for row in rows for _, length in _runs(row, taken)), default=0)


def row_blocks(
    row: SeatRow, taken: set[str], size: int, focal: tuple[float, float]
) -> Iterable[Block]:
    """Every block of ``size`` free seats side by side in ``row``, left to right, ranked."""
    for start, length in _runs(row, taken):
        for first in range(start, start + length - size + 1):
            left, right = first - start, start + length - first - size
            # The script's arithmetic, step for step, so both find the same ties.
            sx = sy = 0.0
            for pos in range(first, first + size):
                sx, sy = sx + row.xs[pos], sy + row.ys[pos]
            dx, dy = sx / size - focal[0], sy / size - focal[1]
            yield Block(
                strands_a_seat=left == 1 or right == 1,
                distance=math.sqrt(dx * dx + dy * dy),
                seats=row.keys[first : first + size],
            )
