"""What a buyer leaves behind expires: anonymous sessions after a short idle time
(apps/core/sessions.py), Idempotency-Key answers after an hour (apps/core/idempotency.py).

Real Redis: the TTLs read here are the ones the servers would apply.
"""

import json
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from apps.core import idempotency
from apps.core.redis import redis_client_get
from apps.core.sessions import SAVED_AT, SessionStore

pytestmark = pytest.mark.django_db

TTL = 3600  # the anonymous TTL these tests run with
STAFF_PASSWORD = "not-a-secret-1"  # noqa: S105 - a test user's


@pytest.fixture(autouse=True)
def _short_sessions(settings):
    settings.SEATS_ANONYMOUS_SESSION_TTL = TTL


def session_ttl(session_key: str) -> int:
    """Seconds the cache's Redis will keep the session (its key's TTL)."""
    return cache.ttl(SessionStore.cache_key_prefix + session_key)


def session_key_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def first_hold(client: Client, sale, seat: str = "A-1-1", **headers: str):
    return client.post(
        f"/api/events/{sale.pk}/holds",
        {"seats": [seat]},
        content_type="application/json",
        headers=headers,
    )


def test_an_anonymous_buyers_session_lives_hours_not_weeks(sale):
    browser = Client()

    assert first_hold(browser, sale).status_code == 201

    key = session_key_of(browser)
    assert TTL - 5 <= session_ttl(key) <= TTL
    assert settings.SESSION_COOKIE_AGE == 14 * 24 * 3600  # what it was: Django's default
    # The browser forgets the cookie when the server forgets the session.
    assert int(browser.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) == TTL


def test_a_new_buyers_session_costs_one_write(sale, monkeypatch):
    """Django's cache sessions look a new key up, add it, then at the end of the request
    read it back and write it again; here the add is all (apps/core/sessions.py)."""
    calls: list[str] = []
    for name in ("get", "add", "set", "has_key"):
        original = getattr(cache, name)
        monkeypatch.setattr(
            cache, name, lambda *a, _n=name, _f=original, **k: (calls.append(_n), _f(*a, **k))[1]
        )
    browser = Client()

    assert first_hold(browser, sale).status_code == 201

    assert calls == ["add"]
    key = session_key_of(browser)
    assert TTL - 5 <= session_ttl(key) <= TTL
    assert SessionStore(key).load()[SAVED_AT] > 0  # what the create wrote is all there is
    # The buyer is the same on the next command (the session was really stored).
    assert first_hold(browser, sale, "A-1-2").status_code == 201
    assert session_key_of(browser) == key


def test_a_session_changed_after_it_was_made_is_saved():
    """The save after a create writes nothing only while the data is what the create wrote."""
    store = SessionStore()
    store.create()
    store["note"] = "kept"
    store.save()
    assert SessionStore(store.session_key).load()["note"] == "kept"


def test_using_a_session_within_half_its_ttl_writes_nothing(sale):
    browser = Client()
    first_hold(browser, sale)
    key = session_key_of(browser)
    cache.expire(SessionStore.cache_key_prefix + key, 100)  # as if saved a while ago

    assert browser.get(f"/api/events/{sale.pk}/seats").status_code == 200
    assert first_hold(browser, sale, "A-1-2").status_code == 201

    assert session_ttl(key) <= 100, "an on-sale's requests must not each write the session"


def test_a_session_used_after_half_its_ttl_is_kept_for_another_ttl(sale):
    browser = Client()
    first_hold(browser, sale)
    key = session_key_of(browser)
    store = SessionStore(key)
    data = store.load()
    data[SAVED_AT] = int(time.time()) - TTL * 6 // 10  # saved 36 of its 60 minutes ago
    cache.set(SessionStore.cache_key_prefix + key, data, 100)

    response = browser.get(f"/api/events/{sale.pk}/seats")

    assert response.status_code == 200
    assert TTL - 5 <= session_ttl(key) <= TTL
    assert time.time() - SessionStore(key).load()[SAVED_AT] < 5
    assert int(response.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) == TTL
    assert session_key_of(browser) == key, "the same session, the buyer keeps their holds"


def test_an_unused_session_expires(sale):
    browser = Client()
    first_hold(browser, sale)
    key = session_key_of(browser)
    cache.expire(SessionStore.cache_key_prefix + key, 1)
    time.sleep(1.2)

    # The next command is from a new buyer: the old session (and its holds' owner) is gone.
    assert first_hold(browser, sale, "A-1-2").status_code == 201
    assert session_key_of(browser) != key


def test_a_logged_in_staff_session_keeps_djangos_age(sale, django_user_model):
    django_user_model.objects.create_user("boxoffice", password=STAFF_PASSWORD, is_staff=True)
    browser = Client()
    first_hold(browser, sale)  # an anonymous session first, as a box office browser may have

    response = browser.post("/admin/login/", {"username": "boxoffice", "password": STAFF_PASSWORD})

    assert response.status_code == 302, response.content
    key = session_key_of(browser)
    age = settings.SESSION_COOKIE_AGE
    assert age - 5 <= session_ttl(key) <= age
    assert int(browser.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) == age
    # Used late in its life, it is not cut down to the anonymous TTL either.
    cache.expire(SessionStore.cache_key_prefix + key, 100)
    assert browser.get("/admin/").status_code == 200
    assert session_ttl(key) <= 100
    SessionStore(key).delete()  # not left for two weeks in the developer's Redis


def test_an_idempotency_keys_answer_is_kept_an_hour(sale):
    browser = Client()
    browser.session  # noqa: B018 - a session first: the key's scope is the cookie

    assert first_hold(browser, sale, **{"Idempotency-Key": "k-1"}).status_code == 201

    client = redis_client_get()
    records = list(client.scan_iter(match=f"{settings.SEATS_REDIS_PREFIX}:idempotency:*"))
    assert len(records) == 1
    assert json.loads(client.get(records[0]))["state"] == "done"
    assert idempotency.KEEP_SECONDS == 3600
    assert 3600 - 5 <= client.ttl(records[0]) <= 3600
