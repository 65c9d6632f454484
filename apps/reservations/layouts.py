"""Venue geometry: generating a section's seats, and the JSON layout format.

Pure functions over plain data; services.py writes what they produce. Keeping the checks
here, before any write, is what lets a bad layout change nothing.
"""

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.core.exceptions import DomainError

LAYOUT_FORMAT = "seats.layout/1"
# A layout this big is a typo, not a venue; refusing it keeps an upload from eating memory.
MAX_SEATS_PER_LAYOUT = 200_000
MAX_ROWS = 500
MAX_SEATS_PER_ROW = 1_000
MAX_REPORTED_ERRORS = 20


class LayoutError(DomainError):
    code = "invalid_layout"
    default_detail = "The layout is not valid."

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        detail = "; ".join(shown) + (f"; and {more} more" if more else "")
        super().__init__(detail, errors=shown)
        self.errors = errors


@dataclass(frozen=True)
class SeatSpec:
    """One seat as the layout describes it, before it is saved."""

    section: str
    row: str
    number: int
    x: float
    y: float
    accessible: bool = False

    @property
    def key(self) -> str:
        return seat_key(self.section, self.row, self.number)


@dataclass(frozen=True)
class SeatGrid:
    """How to generate a section's seats: rows × seats per row, in one of three shapes.

    - ``grid``: straight rows from (x, y), ``spacing`` apart, rows ``row_spacing`` apart.
    - ``offset``: like grid, every other row shifted half a seat (sightlines between heads).
    - ``curved``: rows are arcs around the venue's focal point; the first row is ``radius``
      away from it, and the section is centred on the direction ``angle`` (degrees,
      0 = +x, 90 = +y, i.e. "below" the stage on screen).
    """

    rows: int
    seats_per_row: int
    layout: str = "grid"
    row_labels: str = "numbers"
    x: float = 0.0
    y: float = 0.0
    spacing: float = 10.0
    row_spacing: float = 12.0
    radius: float = 100.0
    angle: float = 90.0

    LAYOUTS = ("grid", "offset", "curved")
    ROW_LABELS = ("numbers", "letters")

    def errors(self) -> list[str]:
        errors = []
        if not 1 <= self.rows <= MAX_ROWS:
            errors.append(f"rows must be between 1 and {MAX_ROWS}, got {self.rows}")
        if not 1 <= self.seats_per_row <= MAX_SEATS_PER_ROW:
            errors.append(
                f"seats per row must be between 1 and {MAX_SEATS_PER_ROW}, got {self.seats_per_row}"
            )
        if self.layout not in self.LAYOUTS:
            errors.append(f"layout must be one of {', '.join(self.LAYOUTS)}")
        if self.row_labels not in self.ROW_LABELS:
            errors.append(f"row labels must be one of {', '.join(self.ROW_LABELS)}")
        if self.spacing <= 0 or self.row_spacing <= 0:
            errors.append("spacing and row spacing must be positive")
        if self.layout == "curved" and self.radius <= 0:
            errors.append("radius must be positive for a curved layout")
        return errors


def seat_key(section: str, row: str, number: int) -> str:
    return f"{section}-{row}-{number}"


def row_label(index: int, style: str) -> str:
    """Row 0 is "1" or "A"; letters go on A..Z, AA, AB, … like spreadsheet columns."""
    if style == "numbers":
        return str(index + 1)
    label = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        label = chr(ord("A") + remainder) + label
    return label


def grid_seats(
    *, section: str, grid: SeatGrid, focal: tuple[float, float] = (0.0, 0.0)
) -> list[SeatSpec]:
    """The seats of ``grid``, numbered 1..n from left to right in each row."""
    errors = grid.errors()
    if errors:
        raise LayoutError(errors)
    seats = []
    for r in range(grid.rows):
        label = row_label(r, grid.row_labels)
        for n in range(grid.seats_per_row):
            x, y = _position(grid, r, n, focal)
            seats.append(SeatSpec(section, label, n + 1, round(x, 2), round(y, 2)))
    return seats


def _position(grid: SeatGrid, r: int, n: int, focal: tuple[float, float]) -> tuple[float, float]:
    if grid.layout == "curved":
        # Constant seat pitch along each arc: outer rows hold the same seats in a
        # narrower angle, which is how real bowls are built.
        radius = grid.radius + r * grid.row_spacing
        centre = (grid.seats_per_row - 1) / 2
        theta = math.radians(grid.angle) - (n - centre) * grid.spacing / radius
        return focal[0] + radius * math.cos(theta), focal[1] + radius * math.sin(theta)
    shift = grid.spacing / 2 if grid.layout == "offset" and r % 2 else 0.0
    return grid.x + n * grid.spacing + shift, grid.y + r * grid.row_spacing


@dataclass(frozen=True)
class Layout:
    """A whole venue as the JSON layout format describes it, checked."""

    venue_name: str
    focal: tuple[float, float]
    categories: list[tuple[str, Decimal, str]]  # name, price, colour
    sections: list[tuple[str, str]]  # name, category name
    seats: list[SeatSpec]


def layout_parse(data: Any) -> Layout:
    """Check a decoded layout document and return it; raise LayoutError listing every problem."""
    errors: list[str] = []
    if not isinstance(data, dict):
        raise LayoutError(["the layout must be a JSON object"])
    if data.get("format", LAYOUT_FORMAT) != LAYOUT_FORMAT:
        errors.append(f"unsupported format {data.get('format')!r}, expected {LAYOUT_FORMAT!r}")

    venue = data.get("venue")
    venue_name, focal = "", (0.0, 0.0)
    if not isinstance(venue, dict) or not _text(venue.get("name")):
        errors.append("venue.name is required")
    else:
        venue_name = venue["name"].strip()
        point = venue.get("focal_point", {"x": 0, "y": 0})
        if not isinstance(point, dict) or not all(_number(point.get(a)) for a in ("x", "y")):
            errors.append("venue.focal_point must be {x: number, y: number}")
        else:
            focal = (float(point["x"]), float(point["y"]))

    categories = []
    for i, item in enumerate(_list(data, "categories", errors)):
        where = f"categories[{i}]"
        if not isinstance(item, dict) or not _text(item.get("name")):
            errors.append(f"{where}: name is required")
            continue
        try:
            price = Decimal(str(item.get("price")))
        except InvalidOperation:
            price = Decimal(-1)
        if not price.is_finite() or price < 0:
            errors.append(f"{where}: price must be a number ≥ 0, got {item.get('price')!r}")
            continue
        categories.append((item["name"].strip(), price, str(item.get("color", "#4a90d9"))))
    errors += _duplicates("category", [c[0] for c in categories])
    category_names = {c[0] for c in categories}

    sections = []
    for i, item in enumerate(_list(data, "sections", errors)):
        where = f"sections[{i}]"
        if not isinstance(item, dict) or not _text(item.get("name")):
            errors.append(f"{where}: name is required")
            continue
        if item.get("category") not in category_names:
            errors.append(f"{where}: unknown category {item.get('category')!r}")
            continue
        sections.append((item["name"].strip(), item["category"]))
    errors += _duplicates("section", [s[0] for s in sections])
    section_names = {s[0] for s in sections}

    raw_seats = _list(data, "seats", errors)
    if len(raw_seats) > MAX_SEATS_PER_LAYOUT:
        raise LayoutError([f"at most {MAX_SEATS_PER_LAYOUT} seats, got {len(raw_seats)}"])
    seats = []
    for i, item in enumerate(raw_seats):
        seat = _seat(item, f"seats[{i}]", section_names, errors)
        if seat:
            seats.append(seat)
    errors += _duplicates("seat key", [s.key for s in seats])
    errors += _duplicates(
        "seat position", [f"{s.section} row {s.row} number {s.number}" for s in seats]
    )
    if errors:
        raise LayoutError(errors)
    return Layout(venue_name, focal, categories, sections, seats)


def _seat(item: Any, where: str, section_names: set[str], errors: list[str]) -> SeatSpec | None:
    if not isinstance(item, dict):
        errors.append(f"{where}: must be an object")
        return None
    if item.get("section") not in section_names:
        errors.append(f"{where}: unknown section {item.get('section')!r}")
        return None
    number = item.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        errors.append(f"{where}: number must be a positive integer, got {number!r}")
        return None
    if not _text(item.get("row")) and not isinstance(item.get("row"), int):
        errors.append(f"{where}: row is required")
        return None
    if not (_number(item.get("x")) and _number(item.get("y"))):
        errors.append(f"{where}: x and y must be numbers")
        return None
    seat = SeatSpec(
        item["section"],
        str(item["row"]).strip(),
        number,
        float(item["x"]),
        float(item["y"]),
        bool(item.get("accessible", False)),
    )
    if "key" in item and item["key"] != seat.key:
        errors.append(f"{where}: key {item['key']!r} does not match its position ({seat.key})")
        return None
    return seat


def _list(data: dict, name: str, errors: list[str]) -> list:
    value = data.get(name)
    if not isinstance(value, list):
        errors.append(f"{name} must be a list")
        return []
    return value


def _duplicates(what: str, values: list[str]) -> list[str]:
    seen: set[str] = set()
    duplicated = []
    for value in values:
        if value in seen:
            duplicated.append(f"duplicate {what} {value!r}")
        seen.add(value)
    return duplicated


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
