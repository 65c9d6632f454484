import math

import pytest

from apps.reservations.layouts import LayoutError, SeatGrid, grid_seats, layout_parse, row_label


def test_row_labels_run_like_spreadsheet_columns():
    assert [row_label(i, "letters") for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "ZZ", "AAA",
    ]  # fmt: skip
    assert row_label(0, "numbers") == "1"


def test_grid_numbers_seats_left_to_right_in_each_row():
    seats = grid_seats(section="A", grid=SeatGrid(rows=2, seats_per_row=3, x=5, y=7, spacing=10))
    assert [s.key for s in seats] == ["A-1-1", "A-1-2", "A-1-3", "A-2-1", "A-2-2", "A-2-3"]
    assert [(s.x, s.y) for s in seats[:4]] == [(5, 7), (15, 7), (25, 7), (5, 19)]


def test_offset_rows_shift_every_other_row_by_half_a_seat():
    seats = grid_seats(section="A", grid=SeatGrid(rows=3, seats_per_row=2, layout="offset"))
    assert [s.x for s in seats] == [0, 10, 5, 15, 0, 10]


def test_curved_rows_keep_their_distance_from_the_focal_point():
    grid = SeatGrid(rows=2, seats_per_row=5, layout="curved", radius=100, row_spacing=12)
    seats = grid_seats(section="A", grid=grid, focal=(50, -20))
    distances = [round(math.dist((s.x, s.y), (50, -20))) for s in seats]
    assert distances == [100] * 5 + [112] * 5
    middle = seats[2]  # centred on angle 90°: straight below the focal point
    assert (middle.x, middle.y) == (50, 80)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (SeatGrid(rows=-1, seats_per_row=3), "rows must be between 1 and"),
        (SeatGrid(rows=2, seats_per_row=0), "seats per row must be between 1 and"),
        (SeatGrid(rows=2, seats_per_row=2, spacing=-1), "spacing and row spacing must be positive"),
        (SeatGrid(rows=2, seats_per_row=2, layout="spiral"), "layout must be one of"),
    ],
)
def test_bad_grids_are_refused_with_a_clear_message(grid, message):
    with pytest.raises(LayoutError) as error:
        grid_seats(section="A", grid=grid)
    assert message in error.value.detail


def _layout(**overrides):
    layout = {
        "format": "seats.layout/1",
        "venue": {"name": "Hall", "focal_point": {"x": 0, "y": 0}},
        "categories": [{"name": "Std", "price": "20.00"}],
        "sections": [{"name": "A", "category": "Std"}],
        "seats": [
            {"section": "A", "row": "1", "number": 1, "x": 0, "y": 0},
            {"section": "A", "row": "1", "number": 2, "x": 10, "y": 0, "accessible": True},
        ],
    }
    layout.update(overrides)
    return layout


def test_a_valid_layout_parses():
    layout = layout_parse(_layout())
    assert layout.venue_name == "Hall"
    assert [s.key for s in layout.seats] == ["A-1-1", "A-1-2"]
    assert layout.seats[1].accessible


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"seats": [{"section": "A", "row": "1", "number": 1, "x": 0, "y": 0}] * 2},
            "duplicate seat key 'A-1-1'",
        ),
        (
            {"seats": [{"section": "Z", "row": "1", "number": 1, "x": 0, "y": 0}]},
            "seats[0]: unknown section 'Z'",
        ),
        (
            {"seats": [{"section": "A", "row": "1", "number": -3, "x": 0, "y": 0}]},
            "number must be a positive integer, got -3",
        ),
        ({"categories": [{"name": "Std", "price": "-5"}]}, "price must be a number ≥ 0"),
        ({"sections": [{"name": "A", "category": "Gold"}]}, "unknown category 'Gold'"),
        (
            {"seats": [{"section": "A", "row": "1", "number": 1, "x": "left", "y": 0}]},
            "x and y must be numbers",
        ),
        (
            {"seats": [{"key": "B-9-9", "section": "A", "row": "1", "number": 1, "x": 0, "y": 0}]},
            "key 'B-9-9' does not match its position (A-1-1)",
        ),
        ({"seats": "all of them"}, "seats must be a list"),
    ],
)
def test_bad_layouts_name_the_problem(overrides, message):
    with pytest.raises(LayoutError) as error:
        layout_parse(_layout(**overrides))
    assert message in error.value.detail


def test_every_problem_is_listed_at_once():
    bad = _layout(
        sections=[{"name": "A", "category": "Gold"}],
        seats=[{"section": "A", "row": "1", "number": 0, "x": 0, "y": 0}],
    )
    with pytest.raises(LayoutError) as error:
        layout_parse(bad)
    assert len(error.value.errors) == 2


def test_a_non_object_layout_is_refused():
    with pytest.raises(LayoutError, match="must be a JSON object"):
        layout_parse([1, 2, 3])
