"""The HTTP API fuzzed from its own OpenAPI schema (`/api/schema/`) with schemathesis.

Every operation gets generated requests, valid and invalid by the schema, sent in process
to the WSGI application (as granian runs it) on a real Postgres and Redis. Whatever they
are, the answer is a 2xx or a 4xx in the API's JSON error shape (docs/api.md, Errors),
never a 5xx; and a 4xx changed nothing: the event's inventory (seq, seat states, holds)
is the same after it as before.

Path ids are aimed at the fuzz event (a random event id only finds 404s), and half of the
hold tokens are a live hold's, so extend, release and reserve get past the token. Buyer
and staff commands are sent by a staff user with an API token: no CSRF, no rate limit.
The examples per operation are few, to keep the module under a minute on two cores.
"""

from dataclasses import dataclass

import pytest
import schemathesis
import werkzeug
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from apps.core.door import BuyerRateThrottle
from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.redis.inventory import inventory_snapshot
from apps.reservations.tests.factories import EventFactory, SectionFactory

pytestmark = pytest.mark.django_db

EXAMPLES = 20  # per operation and generation mode: about 30 s in all on two idle cores


@dataclass
class Fuzz:
    event: Event
    headers: dict[str, str]
    app: WSGIHandler
    live_token: str = ""

    def state(self) -> tuple:
        """Everything a command could change."""
        snap = inventory_snapshot(event_id=self.event.pk)
        return snap.seq, snap.state, snap.holds

    def aim(self, case: schemathesis.Case, live: bool) -> None:
        """Point the case's path at the fuzz event and, if ``live``, at a live hold."""
        params = case.path_parameters or {}
        if "event_id" in params:
            params["event_id"] = self.event.pk
        if live and "hold_token" in params:
            params["hold_token"] = self.live_hold()

    def live_hold(self) -> str:
        """A hold of the fuzzing user that is still there (reserve and release end them)."""
        _, seats, holds = self.state()
        if self.live_token not in holds:
            # The holds the fuzz's valid cases made count against the buyer's cap (10
            # seats): end them first, or a run that granted enough of them gets 422 here.
            for token, hold in holds.items():
                services.hold_release(token=token, holder=hold["holder"])
            _, seats, _ = self.state()
            keys = self.event.venue.seats.values_list("key", flat=True)
            free = sorted(key for key in keys if key not in seats)
            assert free, "the fuzz has taken every seat: give the event more"
            response = werkzeug.Client(self.app).post(
                f"/api/events/{self.event.pk}/holds", json={"seats": free[:1]}, headers=self.headers
            )
            assert response.status_code == 201, response.text
            self.live_token = response.json["hold_token"]
        return self.live_token


@pytest.fixture
def app(db):
    """The WSGI application, as granian serves it. As in Django's test client, requests
    leave the database connection open: it holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz(app, django_user_model, monkeypatch) -> Fuzz:
    monkeypatch.setattr(BuyerRateThrottle, "THROTTLE_RATES", {"commands": None})
    section = SectionFactory(name="A")
    # Enough seats for every reserve the fuzz may make (each one takes a seat for good).
    services.section_seats_generate(section=section, grid=SeatGrid(rows=4, seats_per_row=25))
    event = EventFactory(
        venue=section.venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=10
    )
    services.event_open_sale(event=event)
    staff = django_user_model.objects.create_user("fuzzer", is_staff=True)
    token = Token.objects.create(user=staff)
    return Fuzz(event, {"Authorization": f"Token {token.key}"}, app)


@pytest.fixture
def api_schema(app) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/schema/", app)


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    # The schema view itself is drf-spectacular's, and slow: a whole schema per request.
    return [
        result.ok() for result in schema.get_all_operations() if result.ok().path != "/api/schema/"
    ]


# Schemathesis' own pytest integration (schema.parametrize) relies on pytest internals that
# pytest 9.2 changed; its strategies with Hypothesis' @given need none of that.
def test_every_answer_is_a_2xx_or_a_json_4xx_that_changed_nothing(api_schema, fuzz):
    for operation in operations(api_schema):
        for mode in GenerationMode:
            fuzz_operation(operation, mode, fuzz)


def fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, fuzz: Fuzz) -> None:
    @given(case=operation.as_strategy(generation_mode=mode), live=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis directory: every run starts afresh
        suppress_health_check=list(HealthCheck),
    )
    def one(case: schemathesis.Case, live: bool) -> None:
        fuzz.aim(case, live)
        before = fuzz.state()

        response = case.call(headers=fuzz.headers)

        request = f"{mode} {case.method} {case.formatted_path} {case.body!r:.300} (live: {live})"
        status = response.status_code
        assert status < 500, f"{request} -> {status}: {response.text:.500}"
        if status >= 400:
            assert response.headers.get("content-type", [""])[0].startswith("application/json"), (
                f"{request} -> {status}: {response.text:.500}"
            )
            body = response.json()
            assert isinstance(body, dict), f"{request} -> {status}: {body}"
            assert {"code", "detail"} <= set(body), f"{request} -> {status}: {body}"
            assert fuzz.state() == before, f"{request} -> {status} {body} changed the sale"

    try:
        one()
    except Unsatisfiable:
        # No parameters and no body: nothing of it can be made invalid.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request"
