"""The waiting room in Redis: thin Python over the Lua scripts beside this file
(docs/architecture.md, Waiting room). Every change is one script run, so admissions are
atomic and every web process, the ticker and a restarted process see the same room."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from redis.commands.core import Script

from apps.core.redis import redis_script
from apps.reservations.redis import inventory
from apps.reservations.redis.keys import event_keys

SCRIPTS_DIR = Path(__file__).resolve().parent / "redis"


def room_base(event_id: int) -> str:
    """Every key of the room carries the event's hash tag (apps/reservations/redis/keys.py)."""
    return f"{settings.SEATS_REDIS_PREFIX}:{{ev:{int(event_id)}}}:room"


def room_keys(event_id: int) -> list[str]:
    """The KEYS of every room script, in room.lua's order."""
    base = room_base(event_id)
    return [
        base,
        f"{base}-early",
        f"{base}-places",
        f"{base}-claimed",
        f"{base}-active",
        f"{base}-log",
        event_keys(event_id).meta,
    ]


def rooms_index_key() -> str:
    """Set of event ids whose room is on: the ticker walks it."""
    return f"{settings.SEATS_REDIS_PREFIX}:rooms"


def room_channel(event_id: int) -> str:
    """Pub/Sub channel of the room's figures, for the sockets of buyers who wait."""
    return f"{room_base(event_id)}-live"


@cache
def _script(name: str) -> Script:
    source = "\n".join((SCRIPTS_DIR / f"{part}.lua").read_text() for part in ("room", name))
    return redis_script(source)


class RoomRefusal(Exception):
    """A script said no: ``code`` and the script's details."""

    def __init__(self, code: str, details: dict) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def run(name: str, event_id: int, *, extra_keys: tuple[str, ...] = (), **args: Any) -> dict:
    payload = {"now": inventory.clock_ms(), **args}
    raw = _script(name)(keys=[*room_keys(event_id), *extra_keys], args=[json.dumps(payload)])
    result = json.loads(raw)
    code = result.pop("error", None)
    if code is not None:
        raise RoomRefusal(code, result)
    return result
