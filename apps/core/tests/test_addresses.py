"""The client's address and the new-buyer limit (apps/core/addresses.py), real Redis."""

import pytest
from django.test import RequestFactory

from apps.core import idempotency
from apps.core.addresses import TooManyNewBuyers, client_address, new_buyer_admit
from apps.core.redis import redis_client_get

# What the app sees behind two proxies of ours: the client wrote the first entry itself,
# the outer proxy appended the client's address, the inner one (nginx) the outer's, and
# the inner one is REMOTE_ADDR.
FORGED, CLIENT, OUTER, INNER = "6.6.6.6", "198.51.100.7", "10.0.0.2", "10.0.0.1"
CHAIN = f"{FORGED}, {CLIENT},{OUTER}"


def request(remote: str = INNER, xff: str | None = None):
    extra = {} if xff is None else {"HTTP_X_FORWARDED_FOR": xff}
    return RequestFactory().post("/api/x", REMOTE_ADDR=remote, **extra)


@pytest.fixture
def trusted_proxies(settings):
    def trust(count: int) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}

    return trust


@pytest.mark.parametrize(("proxies", "address"), [(0, INNER), (1, OUTER), (2, CLIENT), (3, FORGED)])
def test_x_forwarded_for_is_read_for_exactly_the_trusted_proxies(trusted_proxies, proxies, address):
    trusted_proxies(proxies)
    assert client_address(request(xff=CHAIN)) == address


def test_without_the_header_it_is_remote_addr(trusted_proxies):
    trusted_proxies(2)
    assert client_address(request()) == INNER


def test_an_entry_that_is_no_address_falls_back_to_remote_addr(trusted_proxies):
    trusted_proxies(1)
    assert client_address(request(xff="1.2.3.4, not-an-address")) == INNER


def test_ipv6_clients_count_by_their_64(trusted_proxies):
    trusted_proxies(1)
    one = client_address(request(xff="2001:db8:1:2:aaaa::1"))
    assert one == client_address(request(xff="2001:db8:1:2:ffff:1:2:3")) == "2001:db8:1:2::/64"
    assert client_address(request(xff="2001:db8:1:3::1")) != one
    assert client_address(request(remote="::ffff:192.0.2.1")) == "192.0.2.1"


def test_an_idempotency_key_without_a_session_is_scoped_by_the_address(trusted_proxies):
    trusted_proxies(0)
    one = idempotency._scope(request(xff="6.6.6.6"), "k")
    assert idempotency._scope(request(xff="7.7.7.7"), "k") == one
    assert idempotency._scope(request(remote="10.9.9.9"), "k") != one
    trusted_proxies(1)
    assert idempotency._scope(request(xff="7.7.7.7"), "k") != one


def test_new_buyers_are_counted_per_address_within_the_window(settings, trusted_proxies):
    trusted_proxies(0)
    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 3
    for n in range(3):
        new_buyer_admit(request(xff=f"6.6.6.{n}"))  # forged: ignored, one address

    with pytest.raises(TooManyNewBuyers) as refused:
        new_buyer_admit(request())

    assert refused.value.status_code == 429
    assert refused.value.get_codes() == "too_many_new_buyers"
    assert 599 <= refused.value.wait <= 600  # Retry-After: the rest of the window
    new_buyer_admit(request(remote="10.9.9.9"))  # another address
    key = f"{settings.SEATS_REDIS_PREFIX}:new-buyers:{INNER}"
    assert 0 < redis_client_get().pttl(key) <= 600_000  # the counter goes with its window


def test_the_new_buyer_limit_can_be_turned_off(settings):
    settings.SEATS_NEW_BUYERS_PER_ADDRESS = 0
    for _ in range(5):
        new_buyer_admit(request())
    assert not list(redis_client_get().scan_iter(f"{settings.SEATS_REDIS_PREFIX}:new-buyers:*"))
