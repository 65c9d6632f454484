"""Each event's outbox: the Redis stream its inventory scripts append every envelope to, in
the same atomic step as the change (docs/architecture.md, "Events on Kafka" and "Gaps and
repair").

The outbox is the write side's own copy of the event log, so it keeps an envelope until it
is safe to forget: until every projection has applied it (their cursors in Postgres), not
merely until the broker acknowledged it. A broker that loses its log can then be refilled by
the relay, and a projection that meets a hole in an event's seq reads the missing envelopes
here (``outbox_envelopes``). Entries are in seq order, one per seq.

Its size is what the slowest projection has not applied yet (about 0.5 KB an envelope):
seconds of traffic normally, everything since it stopped if a projection is down. Past
``settings.SEATS_OUTBOX_KEEP_MAX`` entries an event's outbox also drops the oldest entries
the broker has acknowledged (``outbox_cap``), so Redis memory stays bounded; a projection
that later finds those envelopes neither on the broker nor here repairs the event from the
seat states instead.
"""

from functools import cache
from typing import Any, NamedTuple, cast

from redis.commands.core import Script

from apps.core.envelopes import Envelope, EnvelopeError, envelope_parse
from apps.core.redis import pipeline_scripts, redis_client_get, redis_script
from apps.reservations.redis.keys import event_keys

Entry = tuple[str, dict[str, Any]]  # (stream id, fields: "seq", "envelope")

# Entries one trim call walks at most: a call blocks Redis for about as long as walking
# them takes (well under 10 ms); the caller repeats while a call trims a full chunk.
TRIM_CHUNK = 10_000
# Entries read per round trip when a projection fetches a hole's envelopes.
READ_CHUNK = 1_000

# Deletes the event's entries whose seq is at most ARGV[1] (the seq every projection has
# applied), looking at no more than ARGV[2] entries; returns how many it deleted. Entries
# are in seq order, so the first one above ARGV[1] ends the walk; MINID just past the last
# one deleted is exact, never an entry appended meanwhile.
_TRIM_APPLIED_LUA = """
local applied, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local last, count = nil, 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', limit)) do
  local fields, seq = entry[2], nil
  for i = 1, #fields, 2 do
    if fields[i] == 'seq' then seq = tonumber(fields[i + 1]) end
  end
  if seq ~= nil and seq > applied then break end
  last, count = entry[1], count + 1
end
if last == nil then return 0 end
local ms, n = string.match(last, '^(%d+)-(%d+)$')
redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. (tonumber(n) + 1))
return count
"""


@cache
def _trim_script() -> Script:
    return redis_script(_TRIM_APPLIED_LUA)


def _entries(key: str, start: str, end: str, count: int) -> list[Entry]:
    return cast(list[Entry], redis_client_get().xrange(key, min=start, max=end, count=count))


def _id_after(entry_id: str) -> str:
    """The smallest stream id above ``entry_id``."""
    ms, _, sequence = entry_id.partition("-")
    return f"{ms}-{int(sequence) + 1}"


def outbox_read(positions: dict[int, str | None], count: int) -> dict[int, list[Entry]]:
    """Up to ``count`` entries of each event's outbox after the given entry id (from the
    first entry kept when None), in one pipelined round trip."""
    pipe = redis_client_get().pipeline(transaction=False)
    for event_id, after in positions.items():
        start = "-" if after is None else f"({after}"
        pipe.xrange(event_keys(event_id).outbox, min=start, max="+", count=count)
    return dict(zip(positions, pipe.execute(), strict=True))


def outbox_envelopes(*, event_id: int, after_seq: int, before_seq: int) -> list[Envelope]:
    """The kept envelopes of ``event_id`` with ``after_seq < seq < before_seq``, in order;
    fewer when some were trimmed (a projection then repairs instead)."""
    key = event_keys(event_id).outbox
    found: list[Envelope] = []
    start = "-"
    while True:
        entries = _entries(key, start, "+", READ_CHUNK)
        for entry_id, fields in entries:
            start = f"({entry_id}"
            seq = int(fields.get("seq", 0))
            if seq >= before_seq:
                return found
            if seq > after_seq:
                try:
                    found.append(envelope_parse(fields.get("envelope")))
                except EnvelopeError:
                    return found  # a hole stays a hole: the caller repairs
        if len(entries) < READ_CHUNK:
            return found


def outbox_trim_applied(applied: dict[int, int]) -> int:
    """Drop every entry each event's projections have all applied (``applied``: event id →
    the lowest cursor among them); returns how many were dropped."""
    client = redis_client_get()
    trim = _trim_script()
    dropped = 0
    pending = dict(applied)
    while pending:
        pipe = client.pipeline(transaction=False)
        calls = [([event_keys(e).outbox], [seq, TRIM_CHUNK]) for e, seq in pending.items()]
        trimmed = [*pipeline_scripts(pipe, trim, calls), *pipe.execute()]
        counts = dict(zip(pending, trimmed, strict=True))
        dropped += sum(counts.values())
        pending = {e: pending[e] for e, n in counts.items() if n >= TRIM_CHUNK}
    return dropped


def outbox_cap(event_id: int, *, keep_max: int, published_upto: str) -> int:
    """Bound the event's outbox at ``keep_max`` entries by dropping the oldest ones up to
    ``published_upto`` (acknowledged by the broker; never one not on it yet). Returns how
    many it dropped."""
    client = redis_client_get()
    key = event_keys(event_id).outbox
    excess = client.xlen(key) - keep_max
    if excess <= 0:
        return 0
    ids = [entry_id for entry_id, _ in _entries(key, "-", published_upto, excess)]
    if ids:
        client.xtrim(key, minid=_id_after(ids[-1]), approximate=False)
    return len(ids)


class Measured(NamedTuple):
    """One event's outbox, as the relay's metrics show it."""

    kept: int  # entries
    oldest_ms: int | None  # append time of the oldest kept entry (None: empty)
    seq: int  # the event's seq: the last envelope appended


def outbox_measure(event_ids: list[int]) -> dict[int, Measured]:
    """Each event's outbox (``Measured``), in one round trip."""
    pipe = redis_client_get().pipeline(transaction=False)
    for event_id in event_ids:
        keys = event_keys(event_id)
        pipe.xlen(keys.outbox)
        pipe.xrange(keys.outbox, count=1)
        pipe.hget(keys.meta, "seq")
    replies = pipe.execute() if event_ids else []
    measured = {}
    for i, event_id in enumerate(event_ids):
        length, first, seq = replies[3 * i : 3 * i + 3]
        # Stream ids start with the append time in ms.
        oldest_ms = int(first[0][0].split("-")[0]) if first else None
        measured[event_id] = Measured(length, oldest_ms, int(seq or 0))
    return measured
