import pytest

from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def test_event_list_shows_events_on_sale_but_not_drafts(client):
    on_sale = EventFactory()
    EventFactory(sale_status=Event.SaleStatus.DRAFT)

    response = client.get("/api/events/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert [e["id"] for e in response.json()] == [on_sale.pk]
    assert response.json()[0]["venue"] == on_sale.venue.name


def test_unknown_event_is_a_404_in_the_error_shape(client):
    draft = EventFactory(sale_status=Event.SaleStatus.DRAFT)
    response = client.get(f"/api/events/{draft.pk}", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_api_root_is_browsable(client):
    response = client.get("/api/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Seats API" in response.content or b"Api Root" in response.content


def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/events/" in response.json()["paths"]
