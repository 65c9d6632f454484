"""The envelope: one domain event as the write side publishes it (docs/architecture.md,
Events on Kafka).

This is the contract between the write side and everything that reads its events: the
projections (persistence, stats) and the gateway's bridge depend on it, not on the Kafka
workers' loop (apps/core/workers.py) that hands envelopes to them. Encoding is
``apps.core.kafka.envelope_encode``.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime


@dataclass(frozen=True)
class Envelope:
    """One domain event as published (docs/architecture.md, Events on Kafka)."""

    id: str
    type: str
    event_id: int
    seq: int
    occurred_at: datetime
    data: dict[str, Any]
    request_id: str | None = None  # the HTTP command's that emitted it (apps/core/logs.py)


class EnvelopeError(ValueError):
    """The message is not an envelope; a projection dead-letters it."""


def envelope_parse(value: bytes | str | dict[str, Any] | None) -> Envelope:
    """Check and convert a message value (JSON) or an already-decoded dict."""
    if value is None:
        raise EnvelopeError("the message has no value")
    if isinstance(value, dict):
        raw = value
    else:
        try:
            raw = json.loads(value)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise EnvelopeError(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError("the envelope is not a JSON object")
    problems = []
    for key in ("id", "type", "occurred_at"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            problems.append(f"{key} must be a non-empty string")
    for key in ("event_id", "seq"):
        # bool is an int in Python, never in the envelope.
        if type(raw.get(key)) is not int or raw[key] < 0:
            problems.append(f"{key} must be a non-negative integer")
    if not isinstance(raw.get("data"), dict):
        problems.append("data must be an object")
    if not isinstance(raw.get("request_id", ""), str):
        problems.append("request_id must be a string")
    occurred_at = None
    if isinstance(raw.get("occurred_at"), str):
        try:
            occurred_at = parse_datetime(raw["occurred_at"])
        except ValueError:
            occurred_at = None
        if occurred_at is None or occurred_at.tzinfo is None:
            problems.append("occurred_at must be an ISO 8601 time with a zone")
    if problems:
        raise EnvelopeError("; ".join(problems))
    assert occurred_at is not None
    return Envelope(
        id=raw["id"],
        type=raw["type"],
        event_id=raw["event_id"],
        seq=raw["seq"],
        occurred_at=occurred_at,
        data=raw["data"],
        request_id=raw.get("request_id"),
    )
