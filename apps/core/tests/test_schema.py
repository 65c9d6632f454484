"""The OpenAPI schema (`/api/schema/`) describes the API of docs/api.md, exactly.

drf-spectacular generates it without a warning or an error (as `manage.py spectacular
--validate --fail-on-warn` does); every route of docs/api.md is in it, with its request
and reply components, the reply's fields those the document lists and the errors it names
for the route; every error status of the document's Errors table is answered with the
Error shape somewhere, listing each of its codes; and real replies of every route, success
and error, validate against the schema, with no field and no status it does not describe.
"""

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.test import Client
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token

from apps.persistence.models import Reservation, ReservedSeat
from apps.reservations.redis import inventory
from apps.waitingroom import services as room_services
from apps.waitingroom.models import WaitingRoom

API_DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/api/[^`\s\[]*)")
ERROR_ROW = re.compile(r"^\| (\d{3}) \| (.+?) \| .+ \|$", re.MULTILINE)
# "409 `not_your_turn`", "no body is 400 `parse_error`": an error a route's text names.
ROUTE_ERROR = re.compile(r"\b([45]\d\d) `(\w+)`")
# Answered by Django before any route is matched, so on no operation of the schema.
BEFORE_ANY_ROUTE = {"bad_request"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def template(path: str) -> str:
    """A path with its parameters unnamed: docs/api.md says {id} where the schema says
    {event_id}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def operation(schema: dict, method: str, path: str) -> dict:
    paths = {template(p): item for p, item in schema["paths"].items()}
    assert template(path) in paths, f"{path} is not in the schema"
    item = paths[template(path)]
    assert method.lower() in item, f"{method} {path} is not in the schema"
    return item[method.lower()]


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if len(node.get("allOf", [])) == 1:  # a nested serializer with a description
        return resolve(schema, node["allOf"][0])
    return node


def body_schema(response: dict) -> dict | None:
    content = response.get("content", {})
    return content["application/json"]["schema"] if content else None


# --- drf-spectacular's own checks ---------------------------------------------------------


def test_the_schema_generates_without_warnings_and_is_valid_openapi():
    GENERATOR_STATS.reset()
    generated = SchemaGenerator().get_schema(request=None, public=True)
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    GENERATOR_STATS.reset()
    assert problems == []
    validate_schema(generated)


# --- docs/api.md against the schema -------------------------------------------------------


@dataclass
class DocRoute:
    method: str
    path: str
    section: str  # the "## " heading it is under
    request: str  # its table row's request cell ("" outside a table)
    text: str  # what the document says of it: its table row's reply, or its paragraph


def doc_routes() -> list[DocRoute]:
    """Every route docs/api.md documents, with what it says of it."""
    routes, section = [], ""
    lines = API_DOC.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.startswith("## "):
            section = line[3:].strip()
        for match in ROUTE.finditer(line):
            request = ""
            if line.startswith("|"):
                request, text = line.split(" | ", 1)  # the request's cell, the reply's
            else:  # to the next route or heading
                following = []
                for later in [line[match.end() :], *lines[number + 1 :]]:
                    if later.startswith("## ") or ROUTE.search(later):
                        break
                    following.append(later)
                text = "\n".join(following)
            routes.append(DocRoute(match[1], match[2], section, request, text))
    return routes


def literal_keys(text: str) -> set[str]:
    """The top-level keys of the document's first object literal in ``text``, such as
    `{"seats", "seq"}` or `{"needed": true, "expires_at"}` (values and nested objects
    are skipped)."""
    start = text.find('{"')
    assert start >= 0, text
    keys, depth, previous = set(), 0, ""
    for token in re.finditer(r'"(\w+)"|[{}\[\],:|]', text[start:]):
        if token[0] in "{[":
            depth += 1
        elif token[0] in "}]":
            depth -= 1
            if depth == 0:
                break
        elif token[1] and depth == 1 and previous in "{,":
            keys.add(token[1])
        previous = token[0]
    return keys


def room_keys() -> set[str]:
    """The waiting room's fields, as "The room: `{...}`" lists them."""
    text = API_DOC.read_text()
    return literal_keys(text[text.index("The room: ") :])


def json_example(text: str) -> Any:
    """The ```json block of a route's paragraph, if it has one."""
    match = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    return json.loads(match[1]) if match else None


def success(op: dict) -> tuple[int, dict]:
    statuses = sorted(int(s) for s in op["responses"] if s.startswith("2"))
    assert len(statuses) == 1, statuses
    return statuses[0], op["responses"][str(statuses[0])]


def test_docs_api_md_lists_routes():
    # Guards the parsing below: every section of routes is found.
    found = {(route.method, route.path) for route in doc_routes()}
    assert len(found) >= 17
    assert ("POST", "/api/holds/{token}/release") in found
    assert ("GET", "/api/stats/event/{event_id}/section/{section_id}") in found


@pytest.mark.parametrize("route", doc_routes(), ids=lambda route: f"{route.method} {route.path}")
def test_each_documented_route_is_in_the_schema_as_documented(schema, route):
    op = operation(schema, route.method, route.path)

    # The reply: a component, with the fields the document lists.
    status, reply = success(op)
    declared = re.search(r"\b(2\d\d)\b", route.text)
    if declared:
        assert status == int(declared[1])
    body = body_schema(reply)
    assert body is not None
    if body.get("type") == "array":
        body = body["items"]
    assert "$ref" in body, f"{route.method} {route.path}: the reply is not a component"
    fields = set(resolve(schema, body)["properties"])
    example = json_example(route.text)
    if example is not None:
        assert fields == set(example)
        strict(schema, body).validate(example)
    elif re.search(r"200 room\b", route.text):
        assert fields == room_keys()
    elif '{"' in route.text:
        assert fields == literal_keys(route.text)

    # The request body of a command: a component with the fields the document shows.
    if "`{" in route.request:
        request = op["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in request
        shown = set()
        for start in [m.start() for m in re.finditer(r"`\{", route.request)]:
            if route.request.startswith('`{"', start):
                shown |= literal_keys(route.request[start:])
        assert shown == set(resolve(schema, request)["properties"])
    elif route.method == "POST":
        assert "requestBody" not in op, f"{route.path}: the document shows no body"

    # The errors the document names for the route, and those of its section.
    named = set(ROUTE_ERROR.findall(route.text))
    if route.section in ("Buyer commands", "Staff commands"):
        named |= {("409", "idempotency_key_in_flight"), ("422", "idempotency_key_reused")}
        assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    if route.section == "Buyer commands":
        named.add(("403", "not_admitted"))  # Waiting room: every buyer command needs a pass
    for status_code, code in named:
        response = op["responses"].get(status_code)
        assert response is not None, f"{route.method} {route.path}: no {status_code}"
        assert f"`{code}`" in response["description"], f"{status_code} {code}"
        assert_error_shape(schema, response)


def error_rows() -> Iterator[tuple[str, str]]:
    """(status, code) of each row of docs/api.md's Errors table ("(+ `errors`)" are
    fields, not codes)."""
    errors = API_DOC.read_text().split("## Errors", 1)[1].split("\n## ", 1)[0]
    for status_code, codes in ERROR_ROW.findall(errors):
        for code in re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", codes)):
            yield status_code, code


def assert_error_shape(schema: dict, response: dict) -> None:
    body = resolve(schema, body_schema(response) or {})
    assert {"code", "detail"} <= set(body.get("required", [])), body
    assert set(body["properties"]) >= {"code", "detail", "errors", "seats", "limit", "held"}


def test_every_documented_error_is_in_the_schema_in_the_error_shape(schema):
    rows = list(error_rows())
    assert len(rows) > 20
    answered: dict[tuple[str, str], list[str]] = {}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            for status_code, response in op["responses"].items():
                if status_code.startswith("4"):
                    assert_error_shape(schema, response)
                    for code in re.findall(r"`(\w+)`", response["description"]):
                        answered.setdefault((status_code, code), []).append(f"{method} {path}")
    missing = [row for row in rows if row not in answered and row[1] not in BEFORE_ANY_ROUTE]
    assert missing == []
    # And the schema names no error the document does not.
    assert set(answered) <= set(rows)


# --- real replies against the schema ------------------------------------------------------


def openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema objects as JSON Schema: ``nullable`` as a null alternative,
    and objects closed (a field the schema does not describe is an error)."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: openapi_to_json_schema(value) for key, value in node.items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


def strict(schema: dict, body: dict) -> jsonschema.Draft7Validator:
    components = openapi_to_json_schema(copy.deepcopy(schema["components"]))
    return jsonschema.Draft7Validator({"allOf": [body], "components": components})


class Conformance:
    """Checks each reply against the schema's description of its route and status."""

    def __init__(self, schema: dict) -> None:
        self.schema = schema
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, response: Any, method: str, path: str) -> Any:
        op = operation(self.schema, method, path)
        status_code = str(response.status_code)
        assert status_code in op["responses"], (
            f"{method} {path}: {status_code} is not in the schema: {response.content[:300]!r}"
        )
        body = body_schema(op["responses"][status_code])
        if body is None:
            assert not response.content
        else:
            assert response["Content-Type"] == "application/json"
            strict(self.schema, body).validate(response.json())
        self.seen.add((method, template(path), response.status_code))
        return response


def post(client: Client, url: str, body: object = None, **extra: Any) -> Any:
    data = "" if body is None else json.dumps(body)
    return client.post(url, data, content_type="application/json", **extra)


@pytest.mark.django_db
def test_real_replies_match_the_schema(
    schema, sale, django_user_model, monkeypatch, django_capture_on_commit_callbacks
):
    check = Conformance(schema)
    event = f"/api/events/{sale.pk}"
    buyer, other = Client(), Client()
    staff = django_user_model.objects.create_user("schema-staff", is_staff=True)
    admin = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")

    # Catalog and reads.
    check(buyer.get("/api/"), "GET", "/api/")
    check(buyer.get("/api/events/"), "GET", "/api/events/")
    check(buyer.get(event), "GET", "/api/events/{}")
    check(buyer.get("/api/events/987654321"), "GET", "/api/events/{}")
    layout = check(buyer.get(f"{event}/layout"), "GET", "/api/events/{}/layout")
    check(buyer.get("/api/events/987654321/layout"), "GET", "/api/events/{}/layout")
    check(
        buyer.get(f"{event}/layout", HTTP_IF_NONE_MATCH=layout["ETag"]),
        "GET",
        "/api/events/{}/layout",
    )
    check(buyer.get(f"{event}/seats"), "GET", "/api/events/{}/seats")
    check(buyer.get(f"{event}/seats?section=987654321"), "GET", "/api/events/{}/seats")
    check(buyer.get(f"{event}/seats?section=front"), "GET", "/api/events/{}/seats")
    check(buyer.get(f"/api/stats/event/{sale.pk}"), "GET", "/api/stats/event/{}")
    check(buyer.get("/api/stats/event/987654321"), "GET", "/api/stats/event/{}")
    section = sale.venue.sections.get(name="A").pk
    stats_url = f"/api/stats/event/{sale.pk}/section/"
    check(buyer.get(f"{stats_url}{section}"), "GET", "/api/stats/event/{}/section/{}")
    check(buyer.get(f"{stats_url}987654321"), "GET", "/api/stats/event/{}/section/{}")

    # Buyer commands.
    holds, hold_route = f"{event}/holds", "/api/events/{}/holds"
    first = check(post(buyer, holds, {"seats": ["A-1-1", "A-1-2"]}), "POST", hold_route)
    token = first.json()["hold_token"]
    best = check(post(other, holds, {"best": {"count": 1, "section": section}}), "POST", hold_route)
    check(post(buyer, holds, {"seats": ["A-1-1"], "best": {"count": 1}}), "POST", hold_route)
    check(post(buyer, holds, {"best": {"count": 0}}), "POST", hold_route)
    check(post(buyer, holds, {"seats": ["A-1-1"]}), "POST", hold_route)
    check(post(buyer, holds, {"seats": ["Z-9-9"]}), "POST", hold_route)
    check(post(buyer, holds, {"seats": ["A-1-1"] * 9}), "POST", hold_route)
    check(post(buyer, "/api/events/987654321/holds", {"seats": ["A-1-1"]}), "POST", hold_route)
    check(buyer.post(holds, {"seats": "A-1-1"}), "POST", hold_route)  # multipart: 415
    replayed = {"HTTP_IDEMPOTENCY_KEY": "schema-1"}
    check(post(buyer, holds, {"seats": ["V-1-1"]}, **replayed), "POST", hold_route)
    check(post(buyer, holds, {"seats": ["V-1-1"]}, **replayed), "POST", hold_route)
    check(post(buyer, holds, {"seats": ["A-1-3"]}, **replayed), "POST", hold_route)

    hold = f"/api/holds/{token}"
    check(post(buyer, f"{hold}/extend"), "POST", "/api/holds/{}/extend")
    check(post(other, f"{hold}/extend"), "POST", "/api/holds/{}/extend")
    check(post(buyer, "/api/holds/nonsense/extend"), "POST", "/api/holds/{}/extend")
    check(post(buyer, f"{hold}/release"), "POST", "/api/holds/{}/release")  # no body
    check(post(buyer, f"{hold}/release", {"seats": ["V-1-1"]}), "POST", "/api/holds/{}/release")
    check(post(buyer, f"{hold}/release", {"seats": ["A-1-2"]}), "POST", "/api/holds/{}/release")
    reserved = check(post(buyer, f"{hold}/reserve"), "POST", "/api/holds/{}/reserve")
    check(post(buyer, f"{hold}/reserve"), "POST", "/api/holds/{}/reserve")
    with monkeypatch.context() as later:
        later.setattr(inventory, "clock_ms", lambda: 2**41)  # every hold has expired
        expired = f"/api/holds/{best.json()['hold_token']}/extend"
        check(post(other, expired), "POST", "/api/holds/{}/extend")

    # Staff commands.
    for verb in ("block", "block", "unblock", "unblock"):  # A-1-2 was released
        check(
            post(admin, f"{event}/{verb}", {"seats": ["A-1-2"]}), "POST", f"/api/events/{{}}/{verb}"
        )
    check(post(buyer, f"{event}/block", {"seats": ["A-1-2"]}), "POST", "/api/events/{}/block")
    check(post(admin, f"{event}/block", {"seats": []}), "POST", "/api/events/{}/block")
    reservation_id = reserved.json()["reservation_id"]
    cancel = f"{event}/reservations/{reservation_id}/cancel"
    cancel_route = "/api/events/{}/reservations/{}/cancel"
    check(post(admin, cancel), "POST", cancel_route)
    check(post(admin, cancel), "POST", cancel_route)
    check(post(admin, f"{event}/reservations/nonsense/cancel"), "POST", cancel_route)

    # The reservation as persisted (its row written as the persistence worker would).
    row = Reservation.objects.create(
        id=reservation_id,
        event=sale,
        holder="user:schema",
        total=Decimal("50.00"),
        created_at=timezone.now(),
        seq=1,
    )
    ReservedSeat.objects.create(reservation=row, event=sale, seat_key="A-1-1", price=50)
    check(admin.get(f"/api/reservations/{reservation_id}"), "GET", "/api/reservations/{}")
    check(buyer.get(f"/api/reservations/{reservation_id}"), "GET", "/api/reservations/{}")

    # The waiting room: off, then on.
    room = f"{event}/room"
    check(buyer.get(room), "GET", "/api/events/{}/room")
    check(post(buyer, room), "POST", "/api/events/{}/room")
    check(post(buyer, f"{room}/pass"), "POST", "/api/events/{}/room/pass")
    check(buyer.get("/api/events/987654321/room"), "GET", "/api/events/{}/room")
    check(post(buyer, "/api/events/987654321/room"), "POST", "/api/events/{}/room")
    starts = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        waiting_room = WaitingRoom.objects.create(
            event=sale, enabled=True, sale_starts_at=starts, rate_per_minute=1
        )
        room_services.room_sync(waiting_room)
    check(post(buyer, room), "POST", "/api/events/{}/room")
    check(buyer.get(room), "GET", "/api/events/{}/room")
    check(post(buyer, f"{room}/pass"), "POST", "/api/events/{}/room/pass")
    check(post(other, f"{room}/pass"), "POST", "/api/events/{}/room/pass")
    check(post(buyer, holds, {"seats": ["A-1-3"]}), "POST", hold_route)

    # Every documented route answered, and refused (but the two reads that cannot).
    documented = {(r.method, template(r.path)) for r in doc_routes()}
    answered = {(method, path) for method, path, status in check.seen if status < 300}
    assert documented <= answered
    refused = {(method, path) for method, path, status in check.seen if status >= 400}
    assert answered - refused == {("GET", "/api/"), ("GET", "/api/events/")}
    statuses = {status for *_, status in check.seen}
    assert statuses >= {200, 201, 304, 400, 403, 404, 409, 410, 415, 422}
