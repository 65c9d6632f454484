"""CSRF on the commands of a session cookie (docs/api.md): the command that makes the session
hands out the CSRF cookie; later ones must send its token back. The venue and the
fixtures: helpers.py and conftest.py.
"""

import pytest
from django.conf import settings
from django.test import Client

from apps.reservations.tests.helpers import hold, post, state

pytestmark = pytest.mark.django_db


def test_a_session_cookie_without_the_csrf_token_is_refused(abc_sale):
    browser = Client(enforce_csrf_checks=True)
    first = hold(browser, abc_sale, ["A-1-1"])  # no cookie yet: nothing to ride on
    assert first.status_code == 201
    assert settings.SESSION_COOKIE_NAME in browser.cookies
    token = first.json()["hold_token"]
    before = state(abc_sale)

    refused = post(browser, f"/api/holds/{token}/release")
    refused_hold = hold(browser, abc_sale, ["A-1-2"])

    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert "CSRF" in refused.json()["detail"]
    assert refused_hold.status_code == 403
    assert state(abc_sale) == before


def test_with_the_csrf_token_from_the_cookie_it_works(abc_sale):
    browser = Client(enforce_csrf_checks=True)
    first = hold(browser, abc_sale, ["A-1-1"])
    # The command that created the session also handed out the CSRF cookie.
    csrf = browser.cookies[settings.CSRF_COOKIE_NAME].value
    token = first.json()["hold_token"]

    response = post(browser, f"/api/holds/{token}/reserve", HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 201
    assert response.json()["seats"] == ["A-1-1"]


def test_a_wrong_csrf_token_is_refused(abc_sale):
    browser = Client(enforce_csrf_checks=True)
    token = hold(browser, abc_sale, ["A-1-1"]).json()["hold_token"]
    response = post(browser, f"/api/holds/{token}/reserve", HTTP_X_CSRFTOKEN="x" * 32)
    assert response.status_code == 403
    assert state(abc_sale)[1] == {"A-1-1": f"h:{token}"}


def test_a_csrf_failure_is_not_kept_under_its_idempotency_key(abc_sale):
    browser = Client(enforce_csrf_checks=True)
    hold(browser, abc_sale, ["A-1-1"])
    csrf = browser.cookies[settings.CSRF_COOKIE_NAME].value

    refused = hold(browser, abc_sale, ["A-1-2"], headers={"Idempotency-Key": "k"})
    retried = hold(
        browser, abc_sale, ["A-1-2"], headers={"Idempotency-Key": "k"}, HTTP_X_CSRFTOKEN=csrf
    )

    assert refused.status_code == 403
    assert retried.status_code == 201
