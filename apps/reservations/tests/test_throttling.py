"""The commands' rate limit per buyer (apps/core/door.py, BuyerRateThrottle): past it a
429 that changes nothing and keeps nothing under its Idempotency-Key. The venue and the
fixtures: helpers.py and conftest.py.
"""

import pytest

from apps.core.door import BuyerRateThrottle
from apps.reservations.tests.helpers import hold, post, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(monkeypatch) -> list[float]:
    """Commands limited to 3/min; returns a settable clock for the throttle."""
    monkeypatch.setattr(BuyerRateThrottle, "THROTTLE_RATES", {"commands": "3/min"})
    now = [1_000_000.0]
    monkeypatch.setattr(BuyerRateThrottle, "timer", lambda self: now[0])
    return now


def test_commands_past_the_rate_are_429_and_change_nothing(abc_sale, alice, bob, three_per_minute):
    token = hold(alice, abc_sale, ["A-1-1"]).json()["hold_token"]
    assert post(alice, f"/api/holds/{token}/extend").status_code == 200
    assert hold(alice, abc_sale, ["A-1-2"]).status_code == 201
    before = state(abc_sale)

    response = hold(alice, abc_sale, ["A-1-3"])

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) == 60
    assert state(abc_sale) == before
    # Per buyer: Bob is not affected.
    assert hold(bob, abc_sale, ["A-1-3"]).status_code == 201
    # And after the window, Alice may go on.
    three_per_minute[0] += 61
    assert hold(alice, abc_sale, ["A-1-4"]).status_code == 201


def test_a_throttled_command_is_not_kept_under_its_idempotency_key(
    abc_sale, alice, three_per_minute
):
    for n in (1, 2, 3):
        assert hold(alice, abc_sale, [f"A-1-{n}"]).status_code == 201
    throttled = hold(alice, abc_sale, ["A-1-4"], headers={"Idempotency-Key": "retry-me"})
    assert throttled.status_code == 429

    three_per_minute[0] += 61
    retried = hold(alice, abc_sale, ["A-1-4"], headers={"Idempotency-Key": "retry-me"})

    # The throttled request never ran; retrying it as told must run it, not replay a 429.
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert state(abc_sale)[1]["A-1-4"] == f"h:{retried.json()['hold_token']}"
