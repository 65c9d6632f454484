"""The relay's per-event leases in Redis: which relay publishes an event's outbox
(docs/architecture.md, Events on Kafka).

Several relays may run. Each event's outbox is published by the one relay holding the
event's lease (``event_keys(id).relay_lease``), so one event's messages leave in one order
from one producer. A relay that stops renewing (crash, long pause) loses its leases after
``LEASE_TTL_MS`` and another relay takes over from the stream's first entry.
"""

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field

from apps.core.redis import pipeline_scripts, redis_client_get
from apps.reservations.redis.keys import event_keys, events_index_key

log = logging.getLogger(__name__)

# A crashed relay's events wait this long before another relay takes them over; the owner
# renews every LEASE_REFRESH_S (also while it waits for acknowledgements), so it must miss
# several renewals in a row to lose a lease. Losing one by a long pause costs duplicates,
# never loss or disorder a consumer cannot handle (it fills holes from the outbox).
LEASE_TTL_MS = 3_000
LEASE_REFRESH_S = 0.5

# Compare-and-pexpire / compare-and-delete: a relay never extends or drops a lease another
# relay took over after its own expired.
_LEASE_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_LEASE_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass
class Leases:
    """One relay's identity and the events whose lease it holds."""

    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    )
    held: set[int] = field(default_factory=set)
    refreshed_at: float = float("-inf")

    def __post_init__(self) -> None:
        client = redis_client_get()
        self._renew = client.register_script(_LEASE_RENEW_LUA)
        self._release = client.register_script(_LEASE_RELEASE_LUA)

    def refresh(self, *, force: bool = False) -> None:
        """Renew the leases held and take the free ones of every event in the index, at
        most once per LEASE_REFRESH_S unless ``force``d."""
        now = time.monotonic()
        if not force and now - self.refreshed_at < LEASE_REFRESH_S:
            return
        client = redis_client_get()
        # Events only ever join the index (opening a sale), so a lease is held until the
        # relay stops.
        indexed = {int(m) for m in client.smembers(events_index_key()) if m.isdigit()}
        held = sorted(self.held)
        wanted = sorted(indexed - self.held)
        pipe = client.pipeline(transaction=False)
        renewals = [([event_keys(e).relay_lease], [self.owner, LEASE_TTL_MS]) for e in held]
        renewed = pipeline_scripts(pipe, self._renew, renewals)
        for event_id in wanted:
            pipe.set(event_keys(event_id).relay_lease, self.owner, nx=True, px=LEASE_TTL_MS)
        replies = [*renewed, *pipe.execute()]
        lost = {e for e, renewed in zip(held, replies[: len(held)], strict=True) if not renewed}
        if lost:
            # Another relay may be publishing these now; duplicates are possible, never loss.
            log.warning("outbox relay %s: lost the lease of events %s", self.owner, sorted(lost))
        won = {e for e, taken in zip(wanted, replies[len(held) :], strict=True) if taken}
        self.held = (self.held - lost) | won
        self.refreshed_at = now

    def release(self) -> None:
        """Hand every lease back, so another relay need not wait for the TTL."""
        if not self.held:
            return
        pipe = redis_client_get().pipeline(transaction=False)
        leases = [([event_keys(e).relay_lease], [self.owner]) for e in sorted(self.held)]
        pipeline_scripts(pipe, self._release, leases)
        pipe.execute()
        self.held = set()
