"""The waiting room's rules, over the scripts of store.py (docs/architecture.md, Waiting
room): staff's settings into Redis, joining, taking a pass, the admission tick."""

import json
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from apps.core import metrics
from apps.core.redis import redis_client_get
from apps.reservations.redis import inventory
from apps.waitingroom import store
from apps.waitingroom.errors import BY_CODE, NotYourTurn, TooManyPlaces
from apps.waitingroom.models import WaitingRoom
from apps.waitingroom.passes import pass_sign

log = logging.getLogger(__name__)

# A tick that comes later than this after the one before (the ticker was down) admits only
# this much time's worth: no burst when it comes back.
MAX_TICK_GAP_MS = 5_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def room_sync(room: WaitingRoom) -> None:
    """Put staff's settings of ``room`` into Redis once the current transaction commits;
    the queue and the admissions so far are kept. Call after every change of the row."""
    on = 1 if room.enabled else 0
    args = {
        "on": on,
        "starts_ms": _ms(room.sale_starts_at),
        "rate": room.rate_per_minute or 0,
        "cap": room.max_active or 0,
        "pass_ms": room.pass_minutes * 60_000,
        "claim_ms": settings.SEATS_ROOM_CLAIM_S * 1000,
        "paused": 1 if room.paused else 0,
    }
    event_id = room.event_id

    def sync() -> None:
        client = redis_client_get()
        if on:  # into the ticker's index first: a room it finds off is skipped
            client.sadd(store.rooms_index_key(), event_id)
        figures = store.run("configure", event_id, **args)["room"]
        if not on:
            client.srem(store.rooms_index_key(), event_id)
        room_publish(event_id, figures)

    transaction.on_commit(sync)


def room_update(room: WaitingRoom, **changes: object) -> None:
    """Change staff's settings (pause, resume, the rate) and put them into Redis."""
    for field, value in changes.items():
        setattr(room, field, value)
    room.full_clean()
    with transaction.atomic():
        room.save(update_fields=list(changes))
        room_sync(room)


def room_join(*, event_id: int, buyer: str, address: str) -> dict:
    """Give ``buyer`` their place (the one they have if it still counts); returns the room
    as they see it (``room_view``)."""
    limit = settings.SEATS_ROOM_PLACES_PER_ADDRESS
    address_key = f"{store.room_base(event_id)}-address:{address}"
    try:
        result = store.run(
            "join",
            event_id,
            extra_keys=(address_key,),
            buyer=buyer,
            draw=secrets.randbelow(2**52) / 2**52,
            address_limit=limit,
            address_window_ms=settings.SEATS_NEW_BUYERS_WINDOW_S * 1000,
        )
    except store.RoomRefusal as refused:
        raise _domain_error(refused) from None
    return room_view(event_id, result)


@dataclass(frozen=True)
class RoomPass:
    token: str
    expires_at: datetime
    max_age_s: int


def room_pass_claim(*, event_id: int, buyer: str) -> RoomPass | None:
    """The admitted ``buyer``'s pass (the same expiry if they took it already); None when
    the event has no waiting room on, so no pass is needed."""
    try:
        result = store.run("claim", event_id, buyer=buyer)
    except store.RoomRefusal as refused:
        if refused.code == "not_your_turn":  # with the room as its buyer sees it, not staff's
            raise NotYourTurn(room=room_view(event_id, refused.details)) from None
        raise _domain_error(refused) from None
    expires_ms = result.get("pass_expires")
    if expires_ms is None:
        return None
    return RoomPass(
        token=pass_sign(event_id=event_id, buyer=buyer, expires_ms=expires_ms),
        expires_at=datetime.fromtimestamp(expires_ms / 1000, tz=UTC),
        max_age_s=max(math.ceil((expires_ms - inventory.clock_ms()) / 1000), 1),
    )


def _domain_error(refused: store.RoomRefusal) -> Exception:
    details = refused.details
    if refused.code == "too_many_places":
        return TooManyPlaces(wait=math.ceil(details["wait_ms"] / 1000))
    return BY_CODE[refused.code](**details)


# The last frame this process published per room channel: a tick that changed nothing
# publishes nothing (thousands of sockets would take the same bytes again).
_published: dict[str, str] = {}


def rooms_advance() -> int:
    """The tick: admit in every room that is on, and tell its waiting sockets what changed;
    returns the number of rooms ticked."""
    client = redis_client_get()
    ticked = 0
    for raw_id in client.smembers(store.rooms_index_key()):
        event_id = int(raw_id)
        try:
            figures = store.run("advance", event_id, max_gap_ms=MAX_TICK_GAP_MS)["room"]
        except Exception:  # one broken room must not stop the others' admissions
            log.exception("waiting room of event %s: the tick failed", event_id)
            continue
        if figures["state"] == "off":
            client.srem(store.rooms_index_key(), event_id)
        for figure in ("waiting", "admitted", "active", "dropped"):
            metrics.ROOM.labels(event_id, figure).set(figures[figure])
        room_publish(event_id, figures, only_changes=True)
        ticked += 1
    return ticked


def room_publish(event_id: int, figures: dict, *, only_changes: bool = False) -> None:
    """The room's figures to every socket waiting in it (the gateway's fan-out); with
    ``only_changes``, nothing if this process published the same frame last."""
    frame, channel = room_frame(event_id, figures), store.room_channel(event_id)
    if only_changes and _published.get(channel) == frame:
        return
    redis_client_get().publish(channel, frame)
    _published[channel] = frame


def room_frame(event_id: int, figures: dict, you: dict | None = None) -> str:
    """A ``room`` frame of the live socket (docs/api.md, Waiting room)."""
    body = {"type": "room", **room_view(event_id, {"room": figures, "you": you})}
    if you is None:
        del body["place"]
    return json.dumps(body, separators=(",", ":"))


def room_view(event_id: int, result: dict) -> dict:
    """The room as a buyer sees it: the figures and, if they have one, their place."""
    figures = result["room"]
    rate = figures["rate_per_minute"]
    view = {
        "event_id": event_id,
        "state": figures["state"],
        "sale_starts_at": _iso(figures["starts_ms"]),
        "drawn": figures["drawn"],
        "serving": figures["serving"],
        "waiting": figures["waiting"],
        "rate_per_minute": rate,
        "place": None,
    }
    you = result.get("you")
    if you:
        ticket = you.get("ticket")
        position = max(ticket - figures["serving"], 0) if ticket is not None else None
        view["place"] = {
            "ticket": ticket,
            "position": position,
            "ahead": max(position - 1, 0) if position else None,
            # Until their own admission: their position in admissions, at the room's rate.
            "eta_seconds": math.ceil(position * 60 / rate) if position and rate else None,
            "admitted": ticket is not None and ticket <= figures["serving"],
            "pass_expires_at": _iso(you.get("pass_expires")),
        }
    return view
