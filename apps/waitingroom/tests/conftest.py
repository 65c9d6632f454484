"""Fixtures of the waiting room's HTTP, socket and admin tests: a clock moved by hand and
a room that is on for the root conftest's ``sale``. test_room.py has fixtures of its own
under the same names, which win there."""

import pytest

from apps.reservations.redis import inventory
from apps.waitingroom import services
from apps.waitingroom.models import WaitingRoom
from apps.waitingroom.tests.helpers import PASS_MINUTES, RATE, START_MS, Clock, at


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """A minute before the start."""
    clock = Clock(START_MS - 60_000)
    monkeypatch.setattr(inventory, "clock_ms", clock)
    return clock


@pytest.fixture
def room(sale, clock, django_capture_on_commit_callbacks) -> WaitingRoom:
    """The sale's waiting room, on, in Redis: starts at START_MS, RATE a minute."""
    with django_capture_on_commit_callbacks(execute=True):
        room = WaitingRoom.objects.create(
            event=sale,
            enabled=True,
            sale_starts_at=at(START_MS),
            rate_per_minute=RATE,
            pass_minutes=PASS_MINUTES,
        )
        services.room_sync(room)
    return room


@pytest.fixture
def update(django_capture_on_commit_callbacks):
    """services.room_update, with the Redis side run (it waits for the commit)."""

    def update(room: WaitingRoom, **changes: object) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            services.room_update(room, **changes)

    return update
