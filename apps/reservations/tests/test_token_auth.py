"""Commands of apps with an API token (DRF's ``Authorization: Token``): no CSRF, one buyer
(the user) on any client, a bad token refused. The venue and the fixtures: helpers.py and
conftest.py.
"""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.reservations.tests.helpers import hold, post, state

pytestmark = pytest.mark.django_db


def test_token_auth_needs_no_csrf(abc_sale, django_user_model):
    user = django_user_model.objects.create_user("app-user")
    key = Token.objects.create(user=user).key
    app = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    app.session  # noqa: B018 - a session cookie too: the header still wins, no CSRF asked

    created = hold(app, abc_sale, ["B-1-1", "B-1-2"])
    assert created.status_code == 201
    token = created.json()["hold_token"]
    assert state(abc_sale)[2][token]["holder"] == f"user:{user.pk}"

    assert post(app, f"/api/holds/{token}/extend").status_code == 200
    assert post(app, f"/api/holds/{token}/reserve").status_code == 201


def test_a_token_user_is_the_same_buyer_on_any_client(abc_sale, django_user_model):
    user = django_user_model.objects.create_user("two-devices")
    key = Token.objects.create(user=user).key
    phone = Client(HTTP_AUTHORIZATION=f"Token {key}")
    laptop = Client()
    laptop.force_login(user)
    token = hold(phone, abc_sale, ["B-1-1"]).json()["hold_token"]
    assert post(laptop, f"/api/holds/{token}/reserve").status_code == 201


def test_a_bad_token_is_refused(abc_sale):
    app = Client(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = hold(app, abc_sale, ["B-1-1"])
    # 403, not 401: DRF sends 401 only when the first authenticator (session) names a
    # WWW-Authenticate scheme, and session auth has none.
    assert (response.status_code, response.json()["code"]) == (403, "authentication_failed")
    assert state(abc_sale) == (0, {}, {})
