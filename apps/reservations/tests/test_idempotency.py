"""Idempotency-Key on the commands (docs/api.md): a repeat with the same key gets the first
answer and changes nothing, per buyer; a key is kept only once the command passed the door
(apps/core/door.py: replay, rate and claim in one script call). The venue and the fixtures:
helpers.py and conftest.py; what throttling and CSRF refusals leave under a key:
test_throttling.py, test_csrf.py.
"""

import hashlib
import json

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from apps.core import idempotency
from apps.reservations.redis import inventory
from apps.reservations.tests.helpers import hold, post, state

pytestmark = pytest.mark.django_db


def test_a_repeat_with_the_same_key_replays_the_first_response(abc_sale, alice):
    first = hold(alice, abc_sale, ["A-1-1", "A-1-2"], headers={"Idempotency-Key": "k-1"})
    after_first = state(abc_sale)

    again = hold(alice, abc_sale, ["A-1-1", "A-1-2"], headers={"Idempotency-Key": "k-1"})

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.json()["hold_token"] == first.json()["hold_token"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert state(abc_sale) == after_first
    assert len(after_first[2]) == 1


def test_a_first_command_that_created_the_session_is_replayed_to_its_retry(abc_sale):
    newcomer = Client()  # no session yet: this hold creates it
    body = {"best": {"count": 2, "section": abc_sale.a.pk}}
    first = post(newcomer, abc_sale.holds_url, body, headers={"Idempotency-Key": "first"})
    assert settings.SESSION_COOKIE_NAME in newcomer.cookies

    # The retry now carries the new session cookie, yet must find the first answer.
    again = post(newcomer, abc_sale.holds_url, body, headers={"Idempotency-Key": "first"})

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert len(state(abc_sale)[2]) == 1


def test_a_replayed_best_available_hold_does_not_pick_again(abc_sale, alice):
    body = {"best": {"count": 2, "section": abc_sale.b.pk}}
    first = post(alice, abc_sale.holds_url, body, headers={"Idempotency-Key": "best"})
    again = post(alice, abc_sale.holds_url, body, headers={"Idempotency-Key": "best"})
    assert again.content == first.content
    assert len(state(abc_sale)[1]) == 2


def test_an_error_is_replayed_too(abc_sale, alice, bob):
    bobs = hold(bob, abc_sale, ["A-1-1"]).json()["hold_token"]
    first = hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "k"})
    assert post(bob, f"/api/holds/{bobs}/release", {}).status_code == 200
    # A-1-1 is free now, but the key's answer is the one it got the first time.
    again = hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "k"})
    assert (first.status_code, again.status_code) == (409, 409)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_keys_are_per_buyer(abc_sale, alice, bob):
    a = hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "same"})
    b = hold(bob, abc_sale, ["A-1-2"], headers={"Idempotency-Key": "same"})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["hold_token"] != b.json()["hold_token"]
    assert "Idempotent-Replayed" not in b


def test_without_a_key_a_repeat_runs_again(abc_sale, alice):
    hold(alice, abc_sale, ["A-1-1"])
    assert hold(alice, abc_sale, ["A-1-1"]).status_code == 409


def test_the_same_key_with_another_body_is_422(abc_sale, alice):
    hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "k-2"})
    before = state(abc_sale)

    response = hold(alice, abc_sale, ["A-1-2"], headers={"Idempotency-Key": "k-2"})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert state(abc_sale) == before


def test_the_same_key_on_another_route_is_422(abc_sale, alice):
    token = hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "k-3"}).json()[
        "hold_token"
    ]
    response = post(alice, f"/api/holds/{token}/extend", headers={"Idempotency-Key": "k-3"})
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")


def test_a_key_still_in_flight_is_409(abc_sale, alice):
    body = json.dumps({"seats": ["A-1-1"]})
    # Write the mark exactly as the wrapper does while the first request runs.
    request = RequestFactory().post(abc_sale.holds_url, data=body, content_type="application/json")
    session = alice.cookies[settings.SESSION_COOKIE_NAME].value
    request.COOKIES[settings.SESSION_COOKIE_NAME] = session
    fingerprint = hashlib.sha256(
        f"POST {abc_sale.holds_url}\n".encode() + body.encode()
    ).hexdigest()
    idempotency.redis_client_get().set(
        idempotency.record_key(idempotency._scope(request, "slow"), f"session:{session}"),
        json.dumps({"state": "in_flight", "fingerprint": fingerprint}),
        ex=idempotency.IN_FLIGHT_SECONDS,
    )

    response = post(alice, abc_sale.holds_url, body, headers={"Idempotency-Key": "slow"})

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_flight"
    assert state(abc_sale) == (0, {}, {})


def test_an_overlong_key_is_400(abc_sale, alice):
    response = hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "k" * 256})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_idempotency_key")
    assert state(abc_sale) == (0, {}, {})


def test_a_key_is_claimed_only_past_the_door(abc_sale, alice):
    """Refused before the door (here: content negotiation), nothing is kept under the key,
    and the retry runs."""
    headers = {"Idempotency-Key": "early"}
    refused = hold(alice, abc_sale, ["A-1-1"], headers=headers, HTTP_ACCEPT="text/csv")
    assert refused.status_code == 406

    retried = hold(alice, abc_sale, ["A-1-1"], headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    replayed = hold(alice, abc_sale, ["A-1-1"], headers=headers)
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == retried.json()


def test_one_redis_call_at_the_door(abc_sale, alice, monkeypatch):
    """Replay, rate and claim are one script call; the whole command is four round trips
    with an Idempotency-Key (session, door, hold script, the kept answer)."""
    calls = []
    client = inventory.redis_client_get()
    real = type(client).execute_command
    monkeypatch.setattr(
        type(client),
        "execute_command",
        lambda self, *args, **kw: calls.append(args[0]) or real(self, *args, **kw),
    )
    alice.session  # noqa: B018 - loaded once here, as by the page before the command
    calls.clear()

    assert hold(alice, abc_sale, ["A-1-1"], headers={"Idempotency-Key": "k"}).status_code == 201

    assert calls == ["GET", "EVALSHA", "EVALSHA", "SET"]  # session, door, hold, answer
