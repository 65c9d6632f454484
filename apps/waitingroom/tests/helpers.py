"""Helpers of the waiting room's HTTP, socket and admin tests (fixtures: conftest.py)."""

import json
from datetime import UTC, datetime

from django.test import Client

from apps.reservations.tests.clock import Clock
from apps.waitingroom import services

START_MS = 1_900_000_000_000  # the sale's start in these tests
RATE = 60  # admitted per minute: one per second of ticks
PASS_MINUTES = 10


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso(ms: int) -> str:
    return at(ms).isoformat().replace("+00:00", "Z")


def tick(clock: Clock, ms: int = 1000) -> None:
    """The admission tick, ``ms`` later: at RATE, one admission per 1000 ms."""
    clock.advance(ms)
    services.rooms_advance()


def browser() -> Client:
    """A browser with a session already (as after loading the page): it does not count as a
    new buyer of its address, and has its own throttle bucket."""
    client = Client()
    client.session  # noqa: B018 - the property saves a session and sets its cookie
    return client


def post(client: Client, url: str, body: object = None, **extra: object):
    data = "" if body is None else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **extra)
