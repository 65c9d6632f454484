"""Envelope parsing (docs/architecture.md, Events on Kafka): what a projection accepts, and
why it refuses the rest (its dead letters say so)."""

import uuid
from datetime import UTC, datetime

import pytest

from apps.core.envelopes import EnvelopeError, envelope_parse
from apps.core.kafka import envelope_encode


def envelope(seq: int, event_id: int = 7, **data: object) -> bytes:
    """An envelope's bytes as the write side publishes them (test_workers.py uses it too)."""
    return envelope_encode(
        {
            "id": str(uuid.uuid4()),
            "type": "test.tallied",
            "event_id": event_id,
            "seq": seq,
            "occurred_at": datetime.now(tz=UTC).isoformat(),
            "data": data,
        }
    )


def test_envelope_parse_accepts_the_design_envelope():
    raw = envelope(3, event_id=42, seats=["A-1-1"])
    parsed = envelope_parse(raw)
    assert (parsed.event_id, parsed.seq, parsed.type) == (42, 3, "test.tallied")
    assert parsed.data == {"seats": ["A-1-1"]}
    assert parsed.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (None, "no value"),
        (
            b'{"id": "x", "type": "t", "event_id": "7", "seq": 1, '
            b'"occurred_at": "2026-01-01T00:00:00Z", "data": {}}',
            "event_id must be",
        ),
        (
            b'{"id": "x", "type": "t", "event_id": 7, "seq": true, '
            b'"occurred_at": "2026-01-01T00:00:00Z", "data": {}}',
            "seq must be",
        ),
        (
            b'{"id": "x", "type": "t", "event_id": 7, "seq": 1, '
            b'"occurred_at": "2026-01-01T00:00:00", "data": {}}',
            "with a zone",
        ),
        (b'{"id": "x", "type": "t", "event_id": 7, "seq": 1, "occurred_at": "z"}', "data must"),
    ],
)
def test_envelope_parse_refuses_what_is_not_an_envelope(value, problem):
    with pytest.raises(EnvelopeError, match=problem):
        envelope_parse(value)
