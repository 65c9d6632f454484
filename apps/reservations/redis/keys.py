"""Redis key names of the seat inventory (docs/architecture.md, Write side: Redis).

Every key of one event carries the hash tag ``{ev:<id>}``, so each Lua script touches one
hash slot and the design runs unchanged on Redis Cluster.
"""

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class EventKeys:
    event_id: int
    base: str

    @property
    def meta(self) -> str:
        """Hash: seq, status (on_sale/closed), ttl_ms, max_per_hold, max_hold_ms, and for
        best available fit_max (the largest size with fit sets) and focal_x, focal_y."""
        return f"{self.base}:meta"

    @property
    def seats(self) -> str:
        """Hash: seat key → price in cents. The set of seats that exist."""
        return f"{self.base}:seats"

    @property
    def state(self) -> str:
        """Hash: seat key → "h:<token>" | "r:<reservation id>" | "b". Absent = free."""
        return f"{self.base}:state"

    @property
    def holds(self) -> str:
        """Hash: hold token → JSON {holder, seats, created, expires} (ms since epoch), and
        an anonymous buyer's hold also ``address`` ("addr:<client address>")."""
        return f"{self.base}:holds"

    @property
    def holders(self) -> str:
        """Hash: holder, or "addr:<client address>" → JSON list of its hold tokens (for the
        per-holder and per-address caps)."""
        return f"{self.base}:holders"

    @property
    def expiry(self) -> str:
        """Sorted set: hold token scored by its expiry (ms), for the sweep."""
        return f"{self.base}:expiry"

    @property
    def reservations(self) -> str:
        """Hash: reservation id → JSON {holder, seats, status}."""
        return f"{self.base}:reservations"

    @property
    def outbox(self) -> str:
        """Stream: one entry per domain event, fields ``seq`` and ``envelope`` (JSON)."""
        return f"{self.base}:outbox"

    # The row index of best available (docs/architecture.md, Best available): derived
    # from the seats' states by every script that frees or takes a seat.

    @property
    def rows(self) -> str:
        """Hash: row id → JSON {k, x, y}: seat keys ("" for a gap) and coordinates."""
        return f"{self.base}:rows"

    @property
    def rows_free(self) -> str:
        """Hash: row id → "<section> <category> <bound> <pattern>", one pattern character
        per position: "1" free, "0" taken, "-" a gap in the numbering."""
        return f"{self.base}:rows-free"

    @property
    def seat_rows(self) -> str:
        """Hash: seat key → "<row id>:<position>" (1-based) in that row's pattern."""
        return f"{self.base}:seat-rows"

    @property
    def free(self) -> str:
        """Hash: scope ("all", "s:<section id>", "c:<category id>") → free seats in it."""
        return f"{self.base}:free"

    @property
    def sections(self) -> str:
        """Hash: section id → its price category id."""
        return f"{self.base}:sections"

    @property
    def row_best(self) -> str:
        """Hash: "<row id>:<size>" → "<distance> <position>", the row's best block of that
        size that strands nobody; filled by searches, dropped when the row changes."""
        return f"{self.base}:row-best"

    def fit(self, scope: str, size: int) -> str:
        """Sorted set: the scope's rows with ``size`` free seats side by side, scored by
        their bound. One per scope and size up to max_per_hold; the scripts derive these
        names from the meta key, so they are not among ``script_keys``."""
        return f"{self.base}:fit:{scope}:{size}"

    def fit_ok(self, scope: str, size: int) -> str:
        """Sorted set: like ``fit``, the rows with such a block that strands nobody."""
        return f"{self.base}:fit:ok:{scope}:{size}"

    @property
    def relay_lease(self) -> str:
        """String: which relay process publishes this event's outbox right now."""
        return f"{self.base}:relay-lease"

    def script_keys(self) -> list[str]:
        """The KEYS every inventory script receives, in this order."""
        return [
            self.meta,
            self.seats,
            self.state,
            self.holds,
            self.holders,
            self.expiry,
            self.reservations,
            self.outbox,
            self.rows,
            self.rows_free,
            self.seat_rows,
            self.free,
            self.sections,
            self.row_best,
        ]


def event_keys(event_id: int) -> EventKeys:
    return EventKeys(event_id, f"{settings.SEATS_REDIS_PREFIX}:{{ev:{event_id}}}")


def events_index_key() -> str:
    """Set of event ids whose inventory is in Redis, or is being loaded (the relay and the
    sweep walk it; inventory.inventory_load adds an event before loading it)."""
    return f"{settings.SEATS_REDIS_PREFIX}:events"
