"""Who a log line is about: the request it serves, the envelope it handles.

The request id middleware (apps/core/middleware.py) sets ``request_id`` for the request's
code; the write side copies it into every envelope the request emits (the scripts' emit,
apps/reservations/redis/prelude.lua), and the Kafka consumers set ``envelope_id`` and the
envelope's ``request_id`` while they handle one envelope. ``ContextFilter`` puts both on
every record, so one grep for a request id finds the command and every consumer's line
about what it did (docs/architecture.md, Observability).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
envelope_id: ContextVar[str | None] = ContextVar("envelope_id", default=None)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``envelope_id`` ("-" when there is none) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        record.envelope_id = envelope_id.get() or "-"
        return True


@contextmanager
def envelope_context(envelope_id_: str, request_id_: str | None) -> Iterator[None]:
    """Log lines within are about this envelope (and the request that emitted it)."""
    tokens = envelope_id.set(envelope_id_), request_id.set(request_id_)
    try:
        yield
    finally:
        envelope_id.reset(tokens[0])
        request_id.reset(tokens[1])
