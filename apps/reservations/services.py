"""Write services: the catalog (venues, sections, seats, events) and the sale itself."""

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from apps.reservations.best_available import SeatPlace, seat_rows
from apps.reservations.errors import EventNotFound, HoldNotFound, SaleNotOpen, SeatsUnavailable
from apps.reservations.layouts import (
    Layout,
    LayoutError,
    SeatGrid,
    SeatSpec,
    grid_seats,
)
from apps.reservations.models import Event, PriceCategory, Seat, Section, Venue
from apps.reservations.redis import inventory
from apps.reservations.selectors import catalog_caches_forget, event_cache_forget

# A hold can be extended, but never to more than this many times the event's hold ttl:
# otherwise one buyer could keep seats off sale for the whole on-sale.
MAX_HOLD_TTLS = 3

# A hold token: "<event id>.<token_urlsafe(HOLD_TOKEN_BYTES)>", ASCII only (the id is a
# bigint, so 18 digits at most; 18 random bytes are 24 URL-safe base64 characters).
HOLD_TOKEN_BYTES = 18
HOLD_TOKEN = re.compile(r"([0-9]{1,18})\.[A-Za-z0-9_-]{24}")


@transaction.atomic
def section_seats_generate(*, section: Section, grid: SeatGrid, replace: bool = False) -> int:
    """Create the seats of ``section`` from ``grid``; return how many were created.

    Refuses to touch a section that already has seats unless ``replace``, and never
    changes the seats of a venue with an event past draft: those seats are on sale.
    """
    venue = section.venue
    venue_layout_check_editable(venue)
    seats = grid_seats(section=section.name, grid=grid, focal=(venue.focal_x, venue.focal_y))
    if section.seats.exists():
        if not replace:
            raise LayoutError([f"section {section.name} already has seats"])
        section.seats.all().delete()
    clash = Seat.objects.filter(venue=venue, key__in=[s.key for s in seats]).first()
    if clash is not None:
        raise LayoutError([f"seat key {clash.key!r} already exists in this venue"])
    _seats_create(venue=venue, sections={section.name: section}, seats=seats)
    catalog_caches_forget()  # bulk writes send no signals (signals.py)
    return len(seats)


@transaction.atomic
def venue_layout_import(*, layout: Layout) -> Venue:
    """Create a new venue with every category, section and seat of ``layout``."""
    if Venue.objects.filter(name=layout.venue_name).exists():
        raise LayoutError([f"a venue named {layout.venue_name!r} already exists"])
    venue = Venue.objects.create(
        name=layout.venue_name, focal_x=layout.focal[0], focal_y=layout.focal[1]
    )
    categories = {
        name: PriceCategory.objects.create(venue=venue, name=name, price=price, color=color)
        for name, price, color in layout.categories
    }
    sections = {
        name: Section.objects.create(venue=venue, name=name, category=categories[category])
        for name, category in layout.sections
    }
    _seats_create(venue=venue, sections=sections, seats=layout.seats)
    return venue


def _seats_create(*, venue: Venue, sections: dict[str, Section], seats: list[SeatSpec]) -> None:
    Seat.objects.bulk_create(
        (
            Seat(
                venue=venue,
                section=sections[s.section],
                row=s.row,
                number=s.number,
                key=s.key,
                x=s.x,
                y=s.y,
                accessible=s.accessible,
            )
            for s in seats
        ),
        batch_size=2000,
    )


def venue_layout_frozen(venue: Venue) -> str | None:
    """Why the venue's layout can no longer change, or None while it may.

    The layout (focal point, price categories, sections, seats) is loaded into Redis when
    a sale opens, and every process caches it per event (selectors.py): once an event on
    the venue has left draft, a change would make the catalog, Redis and those caches
    disagree (a seat event the projections cannot place is dead-lettered). An event whose
    opening started counts too (it is in the events index), though Postgres may still say
    draft if the opening died half-way.
    """
    events = dict(venue.events.values_list("pk", "sale_status"))
    opening = set(events) & set(inventory.inventory_event_ids())
    if any(status != Event.SaleStatus.DRAFT for status in events.values()) or opening:
        return (
            f"{venue} has events on sale or closed: its seats, sections, price categories "
            "and focal point can no longer be changed"
        )
    return None


def venue_layout_check_editable(venue: Venue) -> None:
    """Raise LayoutError if the venue's layout is frozen (venue_layout_frozen).

    Takes the venue's row lock for the rest of the caller's transaction, as opening a sale
    does: a change either commits before the sale reads the seats, or waits for the sale
    and then finds it open.
    """
    with transaction.atomic():
        list(Venue.objects.select_for_update().filter(pk=venue.pk).values_list("pk"))
        reason = venue_layout_frozen(venue)
    if reason is not None:
        raise LayoutError([reason])


# --- the sale: inventory in Redis, driven only through the Lua scripts ---------------


def event_open_sale(*, event: Event) -> int:
    """Load the event's seats and rules into Redis and mark it on sale; returns its seq.

    Redis first, then the row: if the save fails, opening again is harmless, because
    loading keeps every seat's state and the seq. The venue's row is locked until the row
    says on sale, so no layout change (venue_layout_check_editable) slips in between
    reading the seats and the sale being open.
    """
    with transaction.atomic():
        venue = Venue.objects.select_for_update().get(pk=event.venue_id)
        seat_prices, places = [], []
        for key, section_id, category_id, price, row, number, x, y in venue.seats.values_list(
            "key", "section_id", "section__category_id", "section__category__price",
            "row", "number", "x", "y",
        ):  # fmt: skip
            seat_prices.append((key, int(price * 100)))
            places.append(SeatPlace(key, section_id, category_id, row, number, x, y))
        if not seat_prices:
            raise LayoutError([f"{venue} has no seats to sell"])
        focal = (venue.focal_x, venue.focal_y)
        seq = inventory.inventory_load(
            event_id=event.pk,
            seat_prices=seat_prices,
            rows=seat_rows(places, focal),
            focal=focal,
            ttl_ms=event.hold_ttl_seconds * 1000,
            max_per_hold=event.max_seats_per_hold,
            max_hold_ms=event.hold_ttl_seconds * 1000 * MAX_HOLD_TTLS,
        )
        Event.objects.filter(pk=event.pk).update(sale_status=Event.SaleStatus.ON_SALE)
        event_cache_forget(event_id=event.pk)  # update() sends no post_save
    event.sale_status = Event.SaleStatus.ON_SALE
    return seq


def event_close_sale(*, event: Event) -> int:
    """Stop new holds. Live holds may still be confirmed: their buyers are mid-checkout."""
    seq = inventory.inventory_close(event_id=event.pk)
    Event.objects.filter(pk=event.pk).update(sale_status=Event.SaleStatus.CLOSED)
    event_cache_forget(event_id=event.pk)
    event.sale_status = Event.SaleStatus.CLOSED
    return seq


@dataclass(frozen=True)
class Hold:
    token: str
    event_id: int
    seats: list[str]
    expires_at: datetime
    seq: int


@dataclass(frozen=True)
class BestRequest:
    count: int
    section_id: int | None = None
    category_id: int | None = None


def hold_create(
    *,
    event_id: int,
    holder: str,
    seats: list[str] | None = None,
    best: BestRequest | None = None,
    address: str | None = None,
    admitted: bool = False,
) -> Hold:
    """Hold the given seats, or the best ``best.count`` ones, for ``holder``: all or none.

    Best available is picked inside the hold script, atomically (docs/architecture.md,
    Best available): concurrent buyers never collide, so there is nothing to retry.

    ``address``, the client's (apps/core/addresses.py): an anonymous holder's seats also
    count against the cap of every anonymous holder from there (docs/architecture.md,
    Abuse limits).

    ``admitted``: the buyer showed a valid pass of the event's waiting room, if it has one
    on (apps/waitingroom/passes.py); as for every buyer command below.

    Reads no Postgres on success: Redis knows whether the event is on sale. Only a refusal
    asks Postgres whether the event exists at all, to answer 404 rather than 409.
    """
    token = f"{event_id}.{secrets.token_urlsafe(HOLD_TOKEN_BYTES)}"
    address_cap = _address_cap(holder=holder, address=address)
    try:
        if seats is not None:
            result = inventory.inventory_hold(
                event_id=event_id,
                seats=seats,
                token=token,
                holder=holder,
                address_cap=address_cap,
                admitted=admitted,
            )
        else:
            assert best is not None
            result = inventory.inventory_hold_best(
                event_id=event_id,
                count=best.count,
                section_id=best.section_id,
                category_id=best.category_id,
                token=token,
                holder=holder,
                address_cap=address_cap,
                admitted=admitted,
            )
    except (SaleNotOpen, Event.DoesNotExist):
        if not Event.objects.filter(pk=event_id).exists():
            raise EventNotFound() from None
        raise
    except SeatsUnavailable as refused:
        if best is None:
            raise
        raise SeatsUnavailable(
            f"Fewer than {best.count} seats are free where you asked.", seats=[]
        ) from refused
    return Hold(token, event_id, result.seats, _from_ms(result.expires_ms), result.seq)


def _address_cap(*, holder: str, address: str | None) -> inventory.AddressCap | None:
    """The address's cap for this holder, if any. A logged-in buyer is one account however
    many sessions it opens, so only their own cap applies; anonymous sessions are free to
    make, so those of one address share one (SEATS_ADDRESS_HOLD_FACTOR; 0 turns it off)."""
    factor = settings.SEATS_ADDRESS_HOLD_FACTOR
    if address is None or factor <= 0 or holder.startswith("user:"):
        return None
    return inventory.AddressCap(address, factor)


@dataclass(frozen=True)
class Extension:
    token: str
    expires_at: datetime  # never past created + MAX_HOLD_TTLS × the event's hold ttl


def hold_extend(*, token: str, holder: str, admitted: bool = False) -> Extension:
    """Push the hold's expiry out by the event's hold ttl (no seat changes, so no seq)."""
    expires = inventory.inventory_extend(
        event_id=hold_token_event_id(token), token=token, holder=holder, admitted=admitted
    )
    return Extension(token, _from_ms(expires))


@dataclass(frozen=True)
class Release:
    seats: list[str]  # the seats released: every seat of the hold when none were named
    seq: int


def hold_release(
    *, token: str, holder: str, seats: list[str] | None = None, admitted: bool = False
) -> Release:
    """Release ``seats`` of the hold, or all of it."""
    result = inventory.inventory_release(
        event_id=hold_token_event_id(token),
        token=token,
        holder=holder,
        seats=seats or [],
        admitted=admitted,
    )
    return Release(result["seats"], result["seq"])


@dataclass(frozen=True)
class Confirmation:
    reservation_id: str
    event_id: int
    seats: list[str]
    seq: int


def hold_reserve(*, token: str, holder: str, admitted: bool = False) -> Confirmation:
    """The hold becomes a reservation; seat.reserved carries it to persistence."""
    event_id = hold_token_event_id(token)
    reservation_id = str(uuid.uuid4())
    result = inventory.inventory_reserve(
        event_id=event_id,
        token=token,
        holder=holder,
        reservation_id=reservation_id,
        admitted=admitted,
    )
    return Confirmation(reservation_id, event_id, result["seats"], result["seq"])


def hold_token_event_id(token: str) -> int:
    """Hold tokens start with their event's id, so the hold routes need no event id.

    Only the shape hold_create makes is a token: ``str.isdigit`` is true of "²", which
    ``int`` refuses (a 500), as it refuses thousands of digits; and ``int`` reads
    full-width or Arabic-Indic digits, which no token of ours has.
    """
    match = HOLD_TOKEN.fullmatch(token)
    if match is None:
        raise HoldNotFound()
    return int(match[1])


@dataclass(frozen=True)
class SeatsChange:
    seats: list[str]
    seq: int


def seats_block(*, event: Event, seats: list[str]) -> SeatsChange:
    """Staff only: take free seats off sale (seat.blocked)."""
    result = inventory.inventory_block(event_id=event.pk, seats=seats)
    return SeatsChange(result["seats"], result["seq"])


def seats_unblock(*, event: Event, seats: list[str]) -> SeatsChange:
    """Staff only: put blocked seats back on sale (seat.released, reason unblocked)."""
    result = inventory.inventory_unblock(event_id=event.pk, seats=seats)
    return SeatsChange(result["seats"], result["seq"])


@dataclass(frozen=True)
class Cancellation:
    reservation_id: str
    seats: list[str]  # every seat of the reservation
    seq: int


def reservation_cancel(*, event_id: int, reservation_id: str) -> Cancellation:
    """Staff only: free the reservation's seats (seat.released, reason cancelled)."""
    result = inventory.inventory_cancel(event_id=event_id, reservation_id=reservation_id)
    return Cancellation(reservation_id, result["seats"], result["seq"])


def holds_expire() -> int:
    """The sweep: end every expired hold of every event; returns how many."""
    ended = 0
    for event_id in inventory.inventory_event_ids():
        while True:
            batch = inventory.inventory_expire(event_id=event_id)
            ended += batch
            if batch < inventory.EXPIRE_BATCH:
                break
    return ended


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
