"""Every process of the Procfile reports what it did, scraped after real commands.

The whole stack (tests/stack.py, Celery included) runs on this test's database, Redis prefix
and topics. Buyers hold, collide, reserve and walk away over HTTP through the one origin;
one live map is open. Then each process's metrics (docs/architecture.md, Observability)
must show it: commands by outcome in web, sockets and frames in ws, publishes and the
backlog in the relay, applied messages and lag in each consumer, the sale's figures in
stats, the expired hold in Celery's sweep, and every worker's heartbeat. The proxy answers
the probes and keeps /metrics to itself.
"""

import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory, SectionFactory, VenueFactory
from tests.stack import ALL, ROOT, Browser, Stack

pytestmark = pytest.mark.django_db(transaction=True)

PIPELINE_S = 60  # guards against hanging: the first consumer-group joins take seconds
HOLD_TTL_S = 10  # the shortest the catalog allows; the sweep must end one hold


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def samples(url: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) → value, summed over the pid label of multi-process gauges."""
    status, body, _ = get(url)
    assert status == 200, url
    values: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "pid")
            key = (sample.name, labels)
            values[key] = values.get(key, 0.0) + sample.value
    return values


def value(values: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in values.items() if n == name and wanted <= ls)


def sale_open() -> Event:
    venue = VenueFactory(name="Metrics Hall")
    section = SectionFactory(venue=venue, name="A", category__price=Decimal("40.00"))
    services.section_seats_generate(section=section, grid=SeatGrid(rows=1, seats_per_row=6))
    event = EventFactory(
        venue=venue, sale_status=Event.SaleStatus.DRAFT, hold_ttl_seconds=HOLD_TTL_S
    )
    services.event_open_sale(event=event)
    return event


def eventually(check, what: str, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    """Scrape until ``check()`` holds: workers report on their own schedule."""
    deadline = time.monotonic() + PIPELINE_S
    while True:
        problem = check()
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {problem}\n{stack.log_tail()}")
        time.sleep(0.5)


def test_every_process_reports_real_commands(settings):
    event = sale_open()
    ev = str(event.pk)
    with Stack(ROOT / "artifacts" / "e2e" / "observability-stack.log", processes=ALL) as stack:
        # The probes, through the one origin; /metrics is not for buyers.
        status, body, headers = get(f"{stack.url}/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, body, _ = get(f"{stack.url}/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"] == {
            "postgres": "ok",
            "redis": "ok",
            "cache": "ok",
            "broker": "ok",
        }
        assert get(f"{stack.url}/metrics")[0] == 404

        with connect(
            f"ws://127.0.0.1:{stack.port}/ws/events/{event.pk}/", origin=stack.url
        ) as socket:
            assert '"snapshot"' in socket.recv(timeout=10)
            a, b, c = Browser(stack.url), Browser(stack.url), Browser(stack.url)
            status, hold, headers = a.post(f"/api/events/{ev}/holds", {"seats": ["A-1-1", "A-1-2"]})
            assert status == 201, hold
            assert len(headers["X-Request-ID"]) == 32  # nginx's $request_id
            status, refused, _ = b.post(f"/api/events/{ev}/holds", {"seats": ["A-1-2"]})
            assert status == 409 and refused["code"] == "seats_unavailable"
            status, reserved, _ = a.post(f"/api/holds/{hold['hold_token']}/reserve", {})
            assert status == 201, reserved
            status, walked_away, _ = c.post(f"/api/events/{ev}/holds", {"best": {"count": 1}})
            assert status == 201, walked_away

            deadline = time.monotonic() + PIPELINE_S
            while '"seat.reserved"' not in socket.recv(timeout=PIPELINE_S):
                assert time.monotonic() < deadline, stack.log_tail()

            web = samples(stack.metrics_url("web"))
            assert value(web, "seats_commands_total", command="hold", outcome="granted") == 2
            assert (
                value(web, "seats_commands_total", command="hold", outcome="seats_unavailable") == 1
            )
            assert value(web, "seats_commands_total", command="reserve", outcome="granted") == 1
            assert value(web, "seats_command_duration_seconds_count", command="hold") == 3

            ws = samples(stack.metrics_url("ws"))
            assert value(ws, "seats_ws_sockets") == 1
            assert value(ws, "seats_ws_frames_sent_total") >= 2  # the snapshot and a change

        def relay_reports():  # type: ignore[no-untyped-def]
            relay = samples(stack.metrics_url("relay"))
            if value(relay, "seats_relay_published_total") < 4:
                return "fewer than 4 envelopes published"
            if ("seats_outbox_backlog", frozenset({("event", ev)})) not in relay:
                return "no backlog gauge for the event"
            return None

        def consumers_report():  # type: ignore[no-untyped-def]
            for name in ("persistence", "stats", "gateway"):
                worker = samples(stack.metrics_url(name))
                if value(worker, "seats_consumer_batch_size_count", consumer=name) < 1:
                    return f"{name}: no batch"
                if not any(n == "seats_consumer_lag" for n, _ in worker):
                    return f"{name}: no lag measured"
                if value(worker, "seats_worker_heartbeat_timestamp_seconds", worker=name) < 1:
                    return f"{name}: no heartbeat"
            persistence = samples(stack.metrics_url("persistence"))
            if value(persistence, "seats_consumer_messages_total", result="applied") < 4:
                return "persistence applied fewer than 4 envelopes"
            return None

        def sale_figures():  # type: ignore[no-untyped-def]
            stats = samples(stack.metrics_url("stats"))
            reserved = value(stats, "seats_event_seats", event=ev, state="reserved")
            if reserved != 2:
                return f"reserved {reserved}"
            if value(stats, "seats_event_revenue", event=ev) != 80.0:
                return "revenue is not 80.00"
            return None

        def sweep_reports():  # type: ignore[no-untyped-def]
            celery = samples(stack.metrics_url("celery"))
            if value(celery, "seats_worker_heartbeat_timestamp_seconds", worker="celery") < 1:
                return "no heartbeat"
            if value(celery, "seats_holds_expired_total") < 1:
                return "the walked-away hold has not expired"
            return None

        eventually(relay_reports, "relay", stack)
        eventually(consumers_report, "consumers", stack)
        eventually(sale_figures, "stats", stack)
        eventually(sweep_reports, "celery", stack)
