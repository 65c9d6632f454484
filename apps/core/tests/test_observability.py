"""Probes, request ids, command metrics and log lines of the web process (in process).

The same, scraped from every real process of the stack: tests/test_observability_stack.py.
"""

import json
import logging

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from apps.core.logs import ContextFilter
from apps.core.redis import redis_client_get
from apps.reservations.redis.keys import event_keys
from apps.reservations.tests.helpers import buyer

pytestmark = pytest.mark.django_db


def command_count(command: str, outcome: str) -> float:
    labels = {"command": command, "outcome": outcome}
    return REGISTRY.get_sample_value("seats_commands_total", labels) or 0.0


def hold(client: Client, event_id: int, seats: list[str], **extra: str):
    return client.post(
        f"/api/events/{event_id}/holds",
        data=json.dumps({"seats": seats}),
        content_type="application/json",
        **extra,
    )


def test_healthz_answers_without_touching_anything():
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_checks_postgres_redis_the_cache_and_the_broker():
    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"postgres": "ok", "redis": "ok", "cache": "ok", "broker": "ok"},
    }


def test_readyz_is_503_and_names_what_does_not_answer(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]  # nothing listens on port 1

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == body["checks"]["redis"] == body["checks"]["cache"] == "ok"
    assert body["checks"]["broker"].startswith("unavailable: ")


def test_commands_are_counted_by_outcome_and_timed(sale):
    alice, bob = buyer(), buyer()
    before = {
        key: command_count(*key)
        for key in [("hold", "granted"), ("hold", "seats_unavailable"), ("hold", "invalid")]
    }
    timed = REGISTRY.get_sample_value("seats_command_duration_seconds_count", {"command": "hold"})

    assert hold(alice, sale.pk, ["A-1-1"]).status_code == 201
    assert hold(bob, sale.pk, ["A-1-1"]).status_code == 409
    assert hold(bob, sale.pk, []).status_code == 400

    assert command_count("hold", "granted") - before[("hold", "granted")] == 1
    assert command_count("hold", "seats_unavailable") - before[("hold", "seats_unavailable")] == 1
    assert command_count("hold", "invalid") - before[("hold", "invalid")] == 1
    after = REGISTRY.get_sample_value("seats_command_duration_seconds_count", {"command": "hold"})
    assert after - (timed or 0.0) == 3


def test_metrics_are_served_as_prometheus_text(sale):
    hold(buyer(), sale.pk, ["A-1-2"])

    response = Client().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert 'seats_commands_total{command="hold",outcome="granted"}' in text
    assert "seats_command_duration_seconds_bucket" in text


def test_every_response_carries_a_request_id_kept_when_it_looks_like_one():
    mine = Client().get("/healthz", HTTP_X_REQUEST_ID="abc-123.x_y")
    forged = Client().get("/healthz", HTTP_X_REQUEST_ID="a b\nFAKE LOG LINE")
    none = Client().get("/healthz")

    assert mine["X-Request-ID"] == "abc-123.x_y"
    assert forged["X-Request-ID"] != "a b\nFAKE LOG LINE"
    assert len(forged["X-Request-ID"]) == len(none["X-Request-ID"]) == 32
    assert forged["X-Request-ID"] != none["X-Request-ID"]


def test_a_command_writes_its_request_id_into_the_envelopes_it_emits(sale):
    response = hold(buyer(), sale.pk, ["A-1-3"], HTTP_X_REQUEST_ID="req-42")

    assert response.status_code == 201
    entries = redis_client_get().xrange(event_keys(sale.pk).outbox)
    last = json.loads(entries[-1][1]["envelope"])
    assert (last["type"], last["request_id"]) == ("seat.held", "req-42")


def test_the_access_log_line_names_the_request(caplog):
    caplog.handler.addFilter(ContextFilter())  # as the console handler has it (settings)
    with caplog.at_level(logging.INFO, logger="apps.core.access"):
        Client().get("/healthz", HTTP_X_REQUEST_ID="req-7")

    [line] = [r for r in caplog.records if r.name == "apps.core.access"]
    assert line.getMessage().startswith("GET /healthz 200 ")
    assert (line.request_id, line.envelope_id) == ("req-7", "-")


def test_production_logs_are_json_lines_with_the_ids():
    from django.conf import settings
    from django.utils.module_loading import import_string

    config = settings.LOGGING["formatters"]["json"]
    formatter = import_string(config["()"])(
        fmt=config["format"], rename_fields=config["rename_fields"]
    )
    record = logging.LogRecord("apps.x", logging.INFO, __file__, 1, "held %s", ("A-1-1",), None)
    ContextFilter().filter(record)

    line = json.loads(formatter.format(record))

    assert line["message"] == "held A-1-1"
    assert (line["level"], line["logger"], line["request_id"]) == ("INFO", "apps.x", "-")
