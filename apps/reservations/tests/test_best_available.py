"""The reference model of best available, pure: geometry in, seat keys out. No database,
no Redis (test_best_available_script.py holds the script to it).

Seats are laid out so that a seat's x is its number and a row's y is given, which makes
every distance in these cases easy to check by hand.
"""

import random

import pytest

from apps.reservations.best_available import SeatPlace, seat_rows
from apps.reservations.best_available import seats_pick_best as reference


def seats_pick_best(*, places, taken, count, focal) -> list[str] | None:
    blocks = reference(rows=seat_rows(places, focal), taken=taken, count=count, focal=focal)
    return None if blocks is None else [seat for block in blocks for seat in block.seats]


def row(
    numbers: range | list[int],
    *,
    row_label: str = "1",
    y: float = 0.0,
    section: int = 1,
    category: int = 1,
    prefix: str = "A",
) -> list[SeatPlace]:
    return [
        SeatPlace(f"{prefix}-{row_label}-{n}", section, category, row_label, n, float(n), y)
        for n in numbers
    ]


def keys(row_label: str, *numbers: int, prefix: str = "A") -> list[str]:
    return [f"{prefix}-{row_label}-{n}" for n in numbers]


# --- together in one row ----------------------------------------------------------------


def test_prefers_seats_side_by_side_in_one_row_over_closer_scattered_seats():
    # Row 1 is closer but only has every other seat free; row 2 is farther but empty.
    places = row(range(1, 7), row_label="1", y=1.0) + row(range(1, 7), row_label="2", y=5.0)
    taken = set(keys("1", 2, 4, 6))

    picked = seats_pick_best(places=places, taken=taken, count=2, focal=(3.5, 0.0))

    # 3-4 is centred on the focal x and leaves two free seats on each side.
    assert picked == keys("2", 3, 4)


def test_seats_come_back_in_row_order():
    places = row(range(1, 11))
    picked = seats_pick_best(places=places, taken=set(), count=4, focal=(5.5, -1.0))
    assert picked == keys("1", 4, 5, 6, 7)


def test_a_gap_in_numbering_is_an_aisle_not_a_neighbour():
    # Seats 1-2 and 4-6: 2 and 4 are not side by side, so 2-3-4 is no block.
    places = row([1, 2, 4, 5, 6])
    picked = seats_pick_best(places=places, taken=set(), count=3, focal=(2.5, 0.0))
    assert picked == keys("1", 4, 5, 6)


def test_rows_of_different_sections_never_merge_even_with_the_same_label():
    # Section 1 row "1" has seats 1-2, section 2 row "1" has 3-5: numbering continues
    # across the sections, but 1-2-3 would straddle them.
    places = row([1, 2], section=1, prefix="L") + row([3, 4, 5], section=2, prefix="R")
    picked = seats_pick_best(places=places, taken=set(), count=3, focal=(2.0, 0.0))
    assert picked == keys("1", 3, 4, 5, prefix="R")


# --- the orphan rule ---------------------------------------------------------------------


def test_does_not_strand_a_seat_next_to_a_taken_one():
    # Row of 6, seat 1 taken, two wanted, focal over seats 3-4. Taking 3-4 would leave
    # seat 2 alone between taken seat 1 and the group; 4-5 would leave seat 6 alone.
    places = row(range(1, 7))
    picked = seats_pick_best(places=places, taken=set(keys("1", 1)), count=2, focal=(3.5, -1.0))
    assert picked == keys("1", 2, 3)


def test_does_not_strand_a_seat_between_two_taken_ones():
    # Row of 7, seats 1 and 7 taken: 4-5 is closest but would leave 6 alone between 5 and
    # 7; 3-4 would leave 2 alone. Of the blocks that strand nobody, 5-6 is closer than 2-3.
    places = row(range(1, 8))
    picked = seats_pick_best(places=places, taken=set(keys("1", 1, 7)), count=2, focal=(4.3, -1.0))
    assert picked == keys("1", 5, 6)


def test_the_orphan_rule_outranks_distance_across_rows():
    # Row 1 (close) has a free run of exactly 3: any pair strands the third. Row 2 (far)
    # is empty, so a pair there strands nobody.
    places = row(range(1, 6), row_label="1", y=1.0) + row(range(1, 6), row_label="2", y=50.0)
    taken = set(keys("1", 1, 5))
    picked = seats_pick_best(places=places, taken=taken, count=2, focal=(3.0, 0.0))
    # Row 2's ends; its middle pairs (2-3, 3-4) would strand a seat too.
    assert picked in (keys("2", 1, 2), keys("2", 4, 5))


def test_when_every_block_strands_a_seat_the_closest_is_still_picked():
    # Free: 2, 3, 4 (1 taken). Either pair leaves one seat alone; there is no alternative.
    places = row(range(1, 5))
    picked = seats_pick_best(places=places, taken=set(keys("1", 1)), count=2, focal=(4.0, 0.0))
    assert picked == keys("1", 3, 4)


def test_filling_a_run_exactly_strands_nobody():
    # Free: 2-4 between taken 1 and 5; a group of 3 fills it, a far empty row also fits.
    places = row(range(1, 6), row_label="1", y=1.0) + row(range(1, 6), row_label="2", y=9.0)
    picked = seats_pick_best(places=places, taken=set(keys("1", 1, 5)), count=3, focal=(3.0, 0.0))
    assert picked == keys("1", 2, 3, 4)


# --- distance to the focal point ------------------------------------------------------------


def test_the_row_closest_to_the_focal_point_wins():
    places = (
        row(range(1, 5), row_label="1", y=1.0)
        + row(range(1, 5), row_label="2", y=2.0)
        + row(range(1, 5), row_label="3", y=3.0)
    )
    picked = seats_pick_best(places=places, taken=set(), count=4, focal=(2.5, 2.2))
    assert picked == keys("2", 1, 2, 3, 4)


def test_the_section_closest_to_the_focal_point_wins():
    near = [SeatPlace(f"N-1-{n}", 2, 2, "1", n, 100.0 + n, 0.0) for n in range(1, 5)]
    far = row(range(1, 5))
    picked = seats_pick_best(places=far + near, taken=set(), count=2, focal=(101.4, -3.0))
    assert picked == ["N-1-1", "N-1-2"]


# --- no row fits the group --------------------------------------------------------------------


def test_without_room_in_any_row_the_group_splits_into_the_longest_runs_first():
    # Nowhere are 4 free side by side. Row 1 (near) has runs of 1 and 2 (seat 3 taken);
    # row 2 (far) has a run of 3 (seats 1-3).
    places = row(range(1, 5), row_label="1", y=1.0) + row(range(1, 5), row_label="2", y=3.0)
    taken = set(keys("1", 3)) | set(keys("2", 4))
    picked = seats_pick_best(places=places, taken=taken, count=4, focal=(2.0, 0.0))
    # The run of 3 first, then the nearest single seat that strands nobody: 1-4 (next to
    # taken 1-3 and the row's end) leaves 1-1 and 1-2 together; 1-1 or 1-2 would not.
    assert picked == keys("2", 1, 2, 3) + keys("1", 4)


def test_the_split_keeps_each_block_as_large_as_what_is_left_allows():
    # Runs of 2 everywhere; 5 seats wanted → 2 + 2 + 1.
    places = row(range(1, 9), y=1.0)
    taken = set(keys("1", 3, 6))
    picked = seats_pick_best(places=places, taken=taken, count=5, focal=(4.5, 0.0))
    assert picked is not None
    assert sorted(picked) == sorted(keys("1", 1, 2, 4, 5, 7))
    assert picked[:2] == keys("1", 4, 5)  # the nearest pair first


def test_fallback_takes_every_free_seat_when_exactly_enough_are_free():
    places = row(range(1, 6))
    picked = seats_pick_best(places=places, taken=set(keys("1", 2, 4)), count=3, focal=(0, 0))
    assert sorted(picked or []) == keys("1", 1, 3, 5)


def test_none_when_fewer_seats_are_free_than_wanted():
    places = row(range(1, 6))
    taken = set(keys("1", 1, 2, 3))
    assert seats_pick_best(places=places, taken=taken, count=3, focal=(0, 0)) is None
    assert seats_pick_best(places=[], taken=set(), count=1, focal=(0, 0)) is None


def test_taken_seats_are_never_picked():
    places = row(range(1, 21), row_label="1") + row(range(1, 21), row_label="2", y=1.0)
    rng = random.Random(7)
    taken = {p.key for p in places if rng.random() < 0.6}
    for count in (1, 2, 3, 5, 8):
        picked = seats_pick_best(places=places, taken=taken, count=count, focal=(10, 0))
        assert picked is not None
        assert len(picked) == count == len(set(picked))
        assert not set(picked) & taken


# --- the rows the script indexes --------------------------------------------------------------


def test_rows_mark_gaps_in_numbering_and_bound_every_block():
    places = row([1, 2, 5], y=4.0) + row([1], row_label="2", y=9.0)
    first, second = seat_rows(places, (3.0, 0.0))
    assert first.keys == ("A-1-1", "A-1-2", "", "A-1-5")
    # The focal x lies within row 1's extent: its bound is the straight distance to it.
    assert (first.bound, second.bound) == (4.0, pytest.approx((2.0**2 + 9.0**2) ** 0.5))
