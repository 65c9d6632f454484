"""What a command's body must be (docs/api.md): JSON, within the size limit, of the right
shape. Anything else is a 4xx that changes nothing. The venue and the fixtures: helpers.py
and conftest.py; odd bodies by hand and through the real servers:
apps/core/tests/test_request_bodies.py.
"""

import json

import pytest

from apps.core.http import MAX_COMMAND_BODY
from apps.reservations.tests.helpers import hold, post, state

pytestmark = pytest.mark.django_db


def test_malformed_json_is_400_and_changes_nothing(abc_sale, alice):
    response = post(alice, abc_sale.holds_url, '{"seats": ["A-1-1",')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert state(abc_sale) == (0, {}, {})


def test_a_body_over_16_kb_is_refused_before_parsing(abc_sale, alice):
    # Valid JSON that would hold a seat, but for its size.
    body = json.dumps({"seats": ["A-1-1"], "padding": "x" * MAX_COMMAND_BODY})
    assert len(body) > 16 * 1024

    response = post(alice, abc_sale.holds_url, body)

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert str(MAX_COMMAND_BODY) in response.json()["detail"]
    assert state(abc_sale) == (0, {}, {})


def test_a_body_just_under_the_limit_is_accepted(abc_sale, alice):
    padding = "x" * (MAX_COMMAND_BODY - 100)
    body = json.dumps({"seats": ["A-1-1"], "padding": padding})
    assert len(body) <= MAX_COMMAND_BODY
    assert post(alice, abc_sale.holds_url, body).status_code == 201


def test_a_body_that_is_not_json_is_415(abc_sale, alice):
    response = alice.post(abc_sale.holds_url, {"seats": "A-1-1"})  # multipart form
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert state(abc_sale) == (0, {}, {})


@pytest.mark.parametrize(
    "body",
    [
        {"seats": "A-1-1"},
        {"seats": {"A-1-1": True}},
        {"seats": []},
        {"seats": [f"A-1-{n}" for n in range(1, 102)]},
        {"seats": ["A" * 41]},
        {"seats": ["A-1-1"], "best": {"count": 1}},
        {},
        {"best": {"count": 0}},
        {"best": {"count": -1}},
        {"best": {"count": "two"}},
        {"best": {"count": 101}},
        {"best": {}},
        {"best": 2},
        {"best": {"count": 1, "section": "front"}},
        ["A-1-1"],
        "A-1-1",
    ],
    ids=lambda body: json.dumps(body)[:40],
)
def test_wrong_types_are_400_invalid(abc_sale, alice, body):
    response = post(alice, abc_sale.holds_url, json.dumps(body))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert state(abc_sale) == (0, {}, {})


@pytest.mark.parametrize("body", [{"seats": "A-1-1"}, {"seats": []}, {"seats": [1, [2]]}])
def test_release_with_wrong_types_is_400_invalid(abc_sale, alice, body):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    before = state(abc_sale)
    response = post(alice, f"/api/holds/{token}/release", body)
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert state(abc_sale) == before
