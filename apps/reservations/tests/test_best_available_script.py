"""Best available inside the hold script (best.lua) against the reference model, on real
Redis (docs/architecture.md, Best available).

Hypothesis draws small venues (sections, rows with gaps in their numbering, grid or jittered
coordinates, a focal point anywhere) and random states (seats taken by holds, blocks and
reservations), then asks the script for the best N seats in the whole event, a section or
a category. The script's pick must be valid and, block by block, at least as good as the
reference's by the documented order; the row index must match the states afterwards.
"""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.reservations.best_available import GAP, Block, SeatPlace, SeatRow, row_blocks, seat_rows
from apps.reservations.best_available import seats_pick_best as reference
from apps.reservations.errors import HoldLimitExceeded, SeatsUnavailable
from apps.reservations.redis import inventory

MAX_PER_HOLD = 8
_event_ids = itertools.count(1)
_tokens = itertools.count(1)


def load(places: list[SeatPlace], focal: tuple[float, float], max_per_hold=MAX_PER_HOLD) -> int:
    event_id = next(_event_ids)
    inventory.inventory_load(
        event_id=event_id,
        seat_prices=[(p.key, 1000) for p in places],
        rows=seat_rows(places, focal),
        focal=focal,
        ttl_ms=600_000,
        max_per_hold=max_per_hold,
        max_hold_ms=1_800_000,
    )
    return event_id


class Held(NamedTuple):
    token: str  # also the holder
    seats: list[str]


def hold_best(event_id: int, count: int, *, holder=None, section=None, category=None) -> Held:
    token = f"{event_id}.t{next(_tokens)}"
    result = inventory.inventory_hold_best(
        event_id=event_id,
        count=count,
        section_id=section,
        category_id=category,
        token=token,
        holder=holder or token,
    )
    return Held(token, result.seats)


# --- random venues and states ------------------------------------------------------------


@st.composite
def venues(draw) -> tuple[list[SeatPlace], tuple[float, float]]:
    """Up to 3 sections of up to 4 rows of up to 9 seats; numbering may skip (aisles);
    coordinates on a grid (many exact ties) or jittered."""
    jitter = draw(st.booleans())
    places = []
    for section in range(1, draw(st.integers(1, 3)) + 1):
        for row in range(1, draw(st.integers(1, 4)) + 1):
            numbers = sorted(draw(st.sets(st.integers(1, 11), min_size=1, max_size=9)))
            for number in numbers:
                x, y = section * 20.0 + number, float(row)
                if jitter:
                    x += draw(st.floats(-0.4, 0.4))
                    y += draw(st.floats(-0.4, 0.4))
                category = 1 + section % 2  # sections 1 and 3 share a category
                places.append(SeatPlace(f"S{section}-{row}-{number}", section, category,
                                        str(row), number, x, y))  # fmt: skip
    focal = (draw(st.floats(0, 80)), draw(st.floats(-10, 10)))
    return places, focal


def take(event_id: int, seats: list[str], how: str) -> None:
    """Take seats as a buyer or staff would: a hold, a reservation or a block."""
    if not seats:
        return
    if how == "blocked":
        inventory.inventory_block(event_id=event_id, seats=seats)
        return
    for i in range(0, len(seats), MAX_PER_HOLD):
        token = f"{event_id}.x{next(_tokens)}"
        inventory.inventory_hold(event_id=event_id, seats=seats[i : i + MAX_PER_HOLD],
                                 token=token, holder=token)  # fmt: skip
        if how == "reserved":
            inventory.inventory_reserve(event_id=event_id, token=token, holder=token,
                                        reservation_id=f"r{token}")  # fmt: skip


def blocks_of(seats: list[str], sizes: list[int], rows: list[SeatRow], taken: set[str],
              focal: tuple[float, float]) -> list[Block]:  # fmt: skip
    """The script's pick cut into blocks of the reference's sizes, each ranked as the
    reference ranks blocks, against the seats taken before it (and by the blocks before
    it). Fails if a block is not free seats side by side in one row."""
    position = {key: (row, pos) for row in rows for pos, key in enumerate(row.keys) if key != GAP}
    taken, ranked, start = set(taken), [], 0
    for size in sizes:
        block = seats[start : start + size]
        start += size
        (row, first), *_ = [position[key] for key in block]
        assert list(row.keys[first : first + size]) == block, f"{block} is not side by side"
        assert not taken & set(block), f"{block} was not free"
        ranked += [b for b in row_blocks(row, taken, size, focal) if list(b.seats) == block]
        taken.update(block)
    assert start == len(seats)
    return ranked


@settings(
    max_examples=150,
    deadline=None,
    # One Redis prefix for the test, a new event id per example: nothing is shared.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    venue=venues(),
    data=st.data(),
)
def test_the_script_picks_as_well_as_the_reference(venue, data):
    places, focal = venue
    event_id = load(places, focal)
    keys = [p.key for p in places]
    taken = data.draw(st.sets(st.sampled_from(keys), max_size=len(keys)), label="taken")
    how = data.draw(st.sampled_from(["held", "reserved", "blocked"]), label="how")
    take(event_id, sorted(taken), how)
    # A few picks in a row, with releases between them: rows the searches resolved
    # change under them, and must be searched right again.
    holds: list[tuple[str, list[str]]] = []
    for _ in range(data.draw(st.integers(1, 4), label="steps")):
        if holds and data.draw(st.booleans(), label="release one"):
            token, seats = holds.pop(data.draw(st.integers(0, len(holds) - 1)))
            inventory.inventory_release(event_id=event_id, token=token, holder=token, seats=[])
            taken -= set(seats)
        else:
            picked = best_compared(event_id, places, focal, taken, data)
            if picked is not None:
                holds.append(picked)
                taken |= set(picked[1])
        assert inventory.inventory_index_check(event_id=event_id) == []


def best_compared(event_id, places, focal, taken, data) -> tuple[str, list[str]] | None:  # type: ignore[no-untyped-def]
    """One best-available hold with a drawn count and scope, held to the reference.
    Returns (token, seats) of the hold, or None if (rightly) refused."""
    sections = sorted({p.section_id for p in places})
    scope = data.draw(st.sampled_from(["event", "section", "category", "both"]), label="scope")
    section = data.draw(st.sampled_from(sections)) if scope in ("section", "both") else None
    category = data.draw(st.sampled_from([1, 2])) if scope in ("category", "both") else None
    count = data.draw(st.integers(1, MAX_PER_HOLD), label="count")
    scope_rows = [
        r for r in seat_rows(places, focal)
        if (section is None or r.section_id == section)
        and (category is None or r.category_id == category)
    ]  # fmt: skip
    scope_keys = {key for r in scope_rows for key in r.keys if key != GAP}
    expected = reference(rows=scope_rows, taken=taken, count=count, focal=focal)

    if expected is None:
        with pytest.raises(SeatsUnavailable):
            hold_best(event_id, count, section=section, category=category)
        return None
    held = hold_best(event_id, count, section=section, category=category)
    assert len(set(held.seats)) == count and set(held.seats) <= scope_keys
    sizes = [len(block.seats) for block in expected]
    got = blocks_of(held.seats, sizes, scope_rows, taken, focal)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.strands_a_seat <= theirs.strands_a_seat
        if mine.strands_a_seat == theirs.strands_a_seat:
            assert mine.distance <= theirs.distance + 1e-9
    return held.token, held.seats


# --- the rules that need no model ------------------------------------------------------------


def grid(sections: int, rows: int, per_row: int) -> list[SeatPlace]:
    return [
        SeatPlace(f"S{s}-{r}-{n}", s, s, str(r), n, s * (per_row + 5.0) + n, float(r))
        for s in range(1, sections + 1)
        for r in range(1, rows + 1)
        for n in range(1, per_row + 1)
    ]


def test_200_concurrent_buyers_of_one_section_all_get_disjoint_seats():
    # Section 1 has 401 seats: every one of 200 buyers wanting 2 gets them, and the
    # 201st does not (one seat is left); nobody is told "unavailable" before that.
    places = grid(2, 20, 20) + [SeatPlace("S1-21-1", 1, 1, "21", 1, 26.0, 21.0)]
    event_id = load(places, (30.0, 0.0))
    with ThreadPoolExecutor(max_workers=16) as pool:
        holds = list(pool.map(lambda i: hold_best(event_id, 2, section=1), range(200)))
    seats = [seat for hold in holds for seat in hold.seats]
    assert len(seats) == len(set(seats)) == 400
    assert all(seat.startswith("S1-") for seat in seats)
    with pytest.raises(SeatsUnavailable):
        hold_best(event_id, 2, section=1)
    assert hold_best(event_id, 1, section=1).seats  # the last seat
    assert inventory.inventory_index_check(event_id=event_id) == []


def test_each_hold_is_one_block_side_by_side_while_any_row_can_seat_it():
    event_id = load(grid(1, 3, 10), (5.5, 0.0))
    results = [hold_best(event_id, 3).seats for _ in range(9)]
    for seats in results:
        rows = {seat.rsplit("-", 1)[0] for seat in seats}
        numbers = sorted(int(seat.rsplit("-", 1)[1]) for seat in seats)
        assert len(rows) == 1 and numbers == list(range(numbers[0], numbers[0] + 3))


def test_a_hold_past_its_expiry_frees_its_seats_for_best_available(clock):
    event_id = load(grid(1, 1, 2), (1.5, 0.0))
    first = hold_best(event_id, 2)
    with pytest.raises(SeatsUnavailable):
        hold_best(event_id, 2)
    clock.advance(600_001)  # the sweep has not run; the script ends the hold itself
    assert sorted(hold_best(event_id, 2).seats) == sorted(first.seats)
    assert inventory.inventory_index_check(event_id=event_id) == []


def test_the_per_buyer_cap_counts_best_available_holds():
    event_id = load(grid(1, 2, 10), (5.5, 0.0), max_per_hold=4)
    hold_best(event_id, 3, holder="ann")
    with pytest.raises(HoldLimitExceeded):
        hold_best(event_id, 2, holder="ann")
    assert len(hold_best(event_id, 1, holder="ann").seats) == 1


def test_a_section_of_another_category_has_no_seats():
    event_id = load(grid(2, 1, 4), (0.0, 0.0))  # section s has category s
    with pytest.raises(SeatsUnavailable):
        hold_best(event_id, 1, section=1, category=2)
    with pytest.raises(SeatsUnavailable):
        hold_best(event_id, 1, section=99)
    assert hold_best(event_id, 1, section=2, category=2).seats[0].startswith("S2-")


def test_reloading_the_sale_rebuilds_the_index_from_the_states():
    places, focal = grid(2, 2, 6), (0.0, 0.0)
    event_id = load(places, focal)
    held = hold_best(event_id, 4).seats
    inventory.inventory_block(event_id=event_id, seats=["S2-1-3"])
    # The index is derived data: wipe part of it and load again, as reopening does.
    from apps.core.redis import redis_client_get
    from apps.reservations.redis.keys import event_keys

    keys = event_keys(event_id)
    redis_client_get().delete(keys.rows_free, keys.fit("all", 2))
    assert inventory.inventory_index_check(event_id=event_id) != []
    inventory.inventory_load(event_id=event_id, seat_prices=[(p.key, 1000) for p in places],
                             rows=seat_rows(places, focal), focal=focal, ttl_ms=600_000,
                             max_per_hold=MAX_PER_HOLD, max_hold_ms=1_800_000)  # fmt: skip
    assert inventory.inventory_index_check(event_id=event_id) == []
    again = hold_best(event_id, 4).seats
    assert not set(again) & set(held)


def test_concurrent_best_and_picked_holds_never_share_a_seat():
    places = grid(1, 4, 10)
    event_id = load(places, (5.5, 0.0))
    won: list[list[str]] = []
    lock = threading.Lock()

    def buyer(i: int) -> None:
        try:
            if i % 2:
                seats = hold_best(event_id, 2).seats
            else:
                row, n = 1 + i % 4, 1 + (i * 3) % 9
                seats, token = [f"S1-{row}-{n}", f"S1-{row}-{n + 1}"], f"{event_id}.p{i}"
                inventory.inventory_hold(event_id=event_id, seats=seats, token=token, holder=token)
        except SeatsUnavailable:
            return
        with lock:
            won.append(seats)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(buyer, range(40)))
    seats = [seat for pair in won for seat in pair]
    assert len(seats) == len(set(seats))
    assert inventory.inventory_index_check(event_id=event_id) == []


def test_an_event_loaded_before_the_index_existed_says_so():
    from redis.exceptions import ResponseError

    from apps.core.redis import redis_client_get
    from apps.reservations.redis.keys import event_keys

    event_id = load(grid(1, 1, 4), (0.0, 0.0))
    redis_client_get().hdel(event_keys(event_id).meta, "fit_max")
    with pytest.raises(ResponseError, match="open the sale again"):
        hold_best(event_id, 2)
    assert inventory.inventory_index_check(event_id=event_id) == [
        "no row index: open the sale again to build it"
    ]
