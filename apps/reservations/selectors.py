"""Read selectors of the catalog."""

import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import TypeVar

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, QuerySet
from redis.commands.core import Script

from apps.core.redis import redis_client_get, redis_script
from apps.reservations.best_available import SeatPlace
from apps.reservations.layouts import LAYOUT_FORMAT
from apps.reservations.models import Event, Venue
from apps.reservations.redis import inventory


def event_list() -> QuerySet[Event]:
    """Events buyers may see (on sale or closed), each with ``venue_name``."""
    return Event.objects.exclude(sale_status=Event.SaleStatus.DRAFT).annotate(
        venue_name=F("venue__name")
    )


@dataclass(frozen=True)
class PublicEvent:
    """What buyers may know of an event (GET /api/events/{id})."""

    id: int
    name: str
    starts_at: datetime
    sale_status: str
    venue_name: str
    hold_ttl_seconds: int
    max_seats_per_hold: int


# Every buyer's page, seat map, stats and socket asks "is this a public event?": in an
# on-sale that is thousands of identical Postgres queries a second. The answer lives in
# Redis instead (JSON, or "" for an unknown or draft event), dropped by
# event_cache_forget once every change commits (apps/reservations/signals.py, and the
# services that update rows without signals). The timeout only bounds a change made
# behind Django's back (raw SQL). docs/architecture.md, "Serving HTTP".
EVENT_CACHE_SECONDS = 300

# A reader that read the row just before a change must not store it just after the
# change dropped the cache (the moment a sale opens, when every buyer is asking): each
# change bumps a version, and a reader stores only if the version is still the one it saw
# before reading Postgres.
EVENT_CACHE_FILL = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
"""


def _event_cache_keys(event_id: int) -> tuple[str, str]:
    """The cached answer and its version, in the event's hash slot (keys.py)."""
    base = f"{settings.SEATS_REDIS_PREFIX}:{{ev:{event_id}}}:public"
    return base, f"{base}-version"


@cache
def _event_cache_fill() -> Script:
    return redis_script(EVENT_CACHE_FILL)


def event_public_get(*, event_id: int) -> PublicEvent | None:
    """The event if it is on sale or closed; None if it is unknown or a draft."""
    keys = _event_cache_keys(event_id)
    cached, version = redis_client_get().mget(keys)  # str: the client decodes responses
    if cached is not None:
        return _event_from_json(str(cached)) if cached else None
    row = (
        event_list()
        .filter(pk=event_id)
        .values("id", "name", "starts_at", "sale_status", "venue_name", "hold_ttl_seconds",
                "max_seats_per_hold")  # type: ignore[misc]  # venue_name: event_list's annotation
        .first()
    )  # fmt: skip
    event = PublicEvent(**row) if row else None
    _event_cache_fill()(keys=keys, args=[_event_to_json(event), EVENT_CACHE_SECONDS, version or ""])
    return event


def event_cache_forget(*, event_id: int) -> None:
    """Drop the cached answer once the current transaction (if any) commits: dropped
    earlier, a reader could cache the row as it was before the change."""

    def forget() -> None:
        cached, version = _event_cache_keys(event_id)
        with redis_client_get().pipeline(transaction=True) as pipe:
            pipe.incr(version)
            pipe.delete(cached)
            pipe.execute()

    transaction.on_commit(forget)


def _event_to_json(event: PublicEvent | None) -> str:
    if event is None:
        return ""
    return json.dumps(asdict(event) | {"starts_at": event.starts_at.isoformat()})


def _event_from_json(raw: str) -> PublicEvent:
    fields = json.loads(raw)
    fields["starts_at"] = datetime.fromisoformat(fields["starts_at"])
    return PublicEvent(**fields)


def venue_layout_export(*, venue: Venue) -> dict:
    """The venue in the JSON layout format, which venue_layout_import reads back."""
    return {
        "format": LAYOUT_FORMAT,
        "venue": {
            "name": venue.name,
            "focal_point": {"x": venue.focal_x, "y": venue.focal_y},
        },
        "categories": [
            {"name": c.name, "price": str(c.price), "color": c.color}
            for c in venue.price_categories.all()
        ],
        "sections": [
            {"name": s.name, "category": s.category.name}
            for s in venue.sections.select_related("category")
        ],
        "seats": [
            {
                "key": s.key,
                "section": s.section.name,
                "row": s.row,
                "number": s.number,
                "x": s.x,
                "y": s.y,
                "accessible": s.accessible,
            }
            for s in venue.seats.select_related("section").order_by("id")
        ],
    }


# --- per-process caches of the catalog ------------------------------------------------
# Best available, the seat map, the layout and the stats read an event's venue (seats,
# sections, prices) on every request: each process keeps them, per event, in these
# memos. They stay true because the layout of a venue cannot change once an event on it
# has left draft (services.venue_layout_check_editable: the admin and the services refuse)
# and they are only filled for such events (every reader asks event_public_get, or follows
# the event's seat events, first); the venue's name, which may change, is part of the
# layout's key. catalog_caches_forget empties them in the process that changed the
# catalog (signals.py, services), for whatever it read before the change (tests, shell).

_F = TypeVar("_F", bound=Callable)
_CATALOG_CACHES: list = []


def catalog_cached(function: _F) -> _F:
    """``lru_cache(maxsize=32)`` whose entries catalog_caches_forget drops."""
    cached = lru_cache(maxsize=32)(function)
    _CATALOG_CACHES.append(cached)
    return cached  # type: ignore[return-value]


def catalog_caches_forget() -> None:
    """Empty this process's catalog memos once the current transaction (if any) commits:
    emptied earlier, a reader could fill them again with the catalog as it was."""

    def forget() -> None:
        for cached in _CATALOG_CACHES:
            cached.cache_clear()

    transaction.on_commit(forget)


@dataclass(frozen=True)
class EventLayout:
    body: dict
    json: bytes  # the body, encoded once
    gzipped: bytes  # and compressed once: ~1 MB for 20,000 seats costs ~90 ms to gzip
    etag: str


@catalog_cached
def event_layout(*, event_id: int, venue_name: str | None = None) -> EventLayout:
    """What a seat map draws: sections, price categories and every seat's position.

    Cached per process like event_seat_places (a venue's layout cannot change once an
    event on it is on sale), encoded and compressed: every buyer of an on-sale fetches it.
    Its venue's name can change: callers pass the one they know (PublicEvent.venue_name),
    so that a renamed venue is another key in every process. Seats are ``[key, row,
    number, x, y, accessible]`` lists: a stadium's 50,000 seats as objects would be
    several times larger for no gain.
    """
    event = Event.objects.select_related("venue").get(pk=event_id)
    venue = event.venue
    seats: dict[int, list] = {}
    for section_id, *seat in venue.seats.order_by("section_id", "id").values_list(
        "section_id", "key", "row", "number", "x", "y", "accessible"
    ):
        seats.setdefault(section_id, []).append(seat)
    body = {
        "event_id": event.pk,
        "venue": venue.name,
        "currency": settings.SEATS_CURRENCY,
        "focal_point": {"x": venue.focal_x, "y": venue.focal_y},
        "categories": [
            {"id": c.pk, "name": c.name, "price": str(c.price), "color": c.color}
            for c in venue.price_categories.all()
        ],
        "sections": [
            {"id": s.pk, "name": s.name, "category_id": s.category_id, "seats": seats.get(s.pk, [])}
            for s in venue.sections.all()
        ],
    }
    encoded = json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    return EventLayout(
        body=body,
        json=encoded,
        gzipped=gzip.compress(encoded, compresslevel=6),
        etag=f'"{hashlib.sha256(encoded).hexdigest()[:32]}"',
    )


@catalog_cached
def event_seat_places(*, event_id: int) -> tuple[list[SeatPlace], tuple[float, float]]:
    """The event's seats as best-available sees them, and the venue's focal point.

    Cached per process (catalog_cached): a venue's seats cannot change once an event on
    it is on sale (services refuse it), and best-available must not query 50,000 rows per
    request.
    """
    event = Event.objects.select_related("venue").get(pk=event_id)
    places = [
        SeatPlace(key, section_id, category_id, row, number, x, y)
        for key, section_id, category_id, row, number, x, y in event.venue.seats.values_list(
            "key", "section_id", "section__category_id", "row", "number", "x", "y"
        )
    ]
    return places, (event.venue.focal_x, event.venue.focal_y)


@catalog_cached
def event_sections(*, event_id: int) -> dict[int, str]:
    """Section id → name for the event's venue (cached like event_seat_places)."""
    event = Event.objects.get(pk=event_id)
    return dict(event.venue.sections.values_list("id", "name"))


@catalog_cached
def event_seat_prices(*, event_id: int) -> dict[str, Decimal]:
    """Seat key → its price category's price (cached like event_seat_places)."""
    event = Event.objects.select_related("venue").get(pk=event_id)
    return dict(event.venue.seats.values_list("key", "section__category__price"))


def inventory_snapshot_get(*, event_id: int) -> inventory.Snapshot:
    """Every non-free seat and hold of the event, consistent with one seq: what the read
    side (seat map, live map, reconciliation) knows of the write side's Redis state."""
    return inventory.inventory_snapshot(event_id=event_id)


def inventory_snapshot_full_get(*, event_id: int) -> inventory.FullSnapshot:
    """The snapshot with every reservation and seat price, consistent with one seq: what
    the projections are derived from (their repair and reconciliation)."""
    return inventory.inventory_snapshot_full(event_id=event_id)


def inventory_event_ids_get() -> list[int]:
    """Events whose inventory is in Redis, or is being loaded (the events index): the
    events a sale was opened for."""
    return inventory.inventory_event_ids()


def event_index_problems(*, event_id: int) -> list[str]:
    """Where best available's row index disagrees with the seat states (docs/architecture.md,
    Best available); [] when it agrees. Opening the sale again rebuilds the index."""
    return [
        f"row index: {problem}" for problem in inventory.inventory_index_check(event_id=event_id)
    ]
