"""The hand-moved clock of the tests (the ``clock`` fixture, root conftest.py)."""


class Clock:
    """Stands in for ``inventory.clock_ms``, the one clock of every Lua script (holds and
    their expiry, outbox timestamps, the waiting room, its passes): ms since the epoch,
    which stays where it is until a test sets ``now`` or calls ``advance``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms
