import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.persistence.services import reservation_record
from apps.persistence.tests.helpers import outbox_last

pytestmark = pytest.mark.django_db


def buy(client: Client, sale, seats: list[str]) -> str:
    """Hold and reserve through the public API, as a buyer would; record the result."""
    held = client.post(
        f"/api/events/{sale.pk}/holds", {"seats": seats}, content_type="application/json"
    )
    assert held.status_code == 201, held.content
    reserved = client.post(f"/api/holds/{held.json()['hold_token']}/reserve")
    assert reserved.status_code == 201, reserved.content
    reservation_record(envelope=outbox_last(sale, "seat.reserved"))
    return reserved.json()["reservation_id"]


def test_the_buyer_sees_their_reservation_as_recorded(client, sale):
    reservation_id = buy(client, sale, ["A-1-1", "V-1-1"])

    response = client.get(f"/api/reservations/{reservation_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == reservation_id
    assert body["event_id"] == sale.pk
    assert body["status"] == "reserved"
    assert body["seats"] == [
        {"seat": "A-1-1", "price": "50.00"},
        {"seat": "V-1-1", "price": "80.00"},
    ]
    assert body["total"] == "130.00"
    assert body["created_at"]
    assert body["cancelled_at"] is None


def test_anyone_else_gets_a_404(client, sale):
    reservation_id = buy(client, sale, ["A-1-1"])
    url = f"/api/reservations/{reservation_id}"

    other_session = Client()
    assert other_session.session.session_key  # creates a session (and its cookie) of its own
    for stranger in (other_session, Client()):
        response = stranger.get(url)
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": "No such reservation."}


def test_a_logged_in_buyer_sees_theirs_and_another_user_does_not(client, sale):
    users = get_user_model().objects
    buyer, other = users.create_user("buyer"), users.create_user("other")
    client.force_login(buyer)
    reservation_id = buy(client, sale, ["A-1-2"])

    assert client.get(f"/api/reservations/{reservation_id}").status_code == 200
    client.force_login(other)
    assert client.get(f"/api/reservations/{reservation_id}").status_code == 404


def test_staff_see_any_reservation(client, admin_client, sale):
    reservation_id = buy(client, sale, ["A-1-3"])

    response = admin_client.get(f"/api/reservations/{reservation_id}")

    assert response.status_code == 200
    assert response.json()["seats"] == [{"seat": "A-1-3", "price": "50.00"}]


@pytest.mark.parametrize("reservation_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_ids_are_a_404_in_the_error_shape(admin_client, reservation_id):
    response = admin_client.get(f"/api/reservations/{reservation_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
