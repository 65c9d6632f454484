"""Fixtures of the waiting room's tests: where the clock starts, a room that is on for the
root conftest's ``sale``, and ``update``. The clock itself (``clock``, moved by hand): the
root conftest.py."""

import pytest

from apps.reservations.tests.clock import Clock
from apps.waitingroom import services
from apps.waitingroom.models import WaitingRoom
from apps.waitingroom.tests.helpers import PASS_MINUTES, RATE, START_MS, at


@pytest.fixture
def clock_start() -> int:
    """``clock`` (the root conftest.py) starts a minute before the sale's start."""
    return START_MS - 60_000


@pytest.fixture
def room(sale, clock: Clock, django_capture_on_commit_callbacks) -> WaitingRoom:
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
