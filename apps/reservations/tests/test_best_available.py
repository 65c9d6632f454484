"""Best-available selection, pure: geometry in, seat keys out. No database, no Redis.

Seats are laid out so that a seat's x is its number and a row's y is given, which makes
every distance in these cases easy to check by hand.
"""

import random

import pytest

from apps.reservations.best_available import SeatPlace, seats_pick_best


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


def test_falls_back_to_the_closest_scattered_seats_when_no_row_fits():
    # No two free seats are side by side anywhere.
    places = row(range(1, 7), row_label="1", y=1.0) + row(range(1, 7), row_label="2", y=3.0)
    taken = set(keys("1", 2, 4, 6)) | set(keys("2", 1, 3, 5))
    picked = seats_pick_best(places=places, taken=taken, count=3, focal=(3.0, 0.0))
    # Distances: 1-3 → 1.0, 1-1 / 1-5 → 2.24, 2-2 / 2-4 → 3.16.
    assert picked is not None
    assert picked[0] == "A-1-3"
    assert set(picked) == set(keys("1", 1, 3, 5))


def test_fallback_takes_every_free_seat_when_exactly_enough_are_free():
    places = row(range(1, 6))
    picked = seats_pick_best(places=places, taken=set(keys("1", 2, 4)), count=3, focal=(0, 0))
    assert picked == keys("1", 1, 3, 5)


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


# --- spread -----------------------------------------------------------------------------------


@pytest.fixture
def ranked_pairs() -> list[SeatPlace]:
    """Five rows of exactly two seats, row r at distance r: the ranking is row 1 … row 5."""
    places: list[SeatPlace] = []
    for r in range(1, 6):
        places += row([1, 2], row_label=str(r), y=float(r))
    return places


def picks(places: list[SeatPlace], spread: int, tries: int = 300) -> set[tuple[str, ...]]:
    rng = random.Random(1234)
    seen = set()
    for _ in range(tries):
        picked = seats_pick_best(
            places=places, taken=set(), count=2, focal=(1.5, 0.0), spread=spread, rng=rng
        )
        assert picked is not None
        seen.add(tuple(picked))
    return seen


def test_spread_one_always_picks_the_best(ranked_pairs):
    assert picks(ranked_pairs, spread=1) == {tuple(keys("1", 1, 2))}


def test_spread_picks_among_exactly_the_best_n(ranked_pairs):
    assert picks(ranked_pairs, spread=3) == {tuple(keys(str(r), 1, 2)) for r in (1, 2, 3)}


def test_spread_larger_than_the_candidates_picks_among_all_of_them(ranked_pairs):
    assert picks(ranked_pairs, spread=64) == {tuple(keys(str(r), 1, 2)) for r in range(1, 6)}


def test_spread_below_one_behaves_as_one(ranked_pairs):
    assert picks(ranked_pairs, spread=0) == {tuple(keys("1", 1, 2))}
