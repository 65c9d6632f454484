"""Fixtures of the write side's tests: the HTTP command tests' sale, two buyers and the box
office (helpers.py has the venue and the helpers), and the relay tests' Kafka producer.
``clock`` and ``sale`` (another event): the root conftest.py."""

import pytest
from django.conf import settings
from django.test import Client

from apps.core.kafka import kafka_producer_create, topics_ensure
from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.tests.clock import Clock
from apps.reservations.tests.factories import EventFactory
from apps.reservations.tests.helpers import T0, TTL_MS, ABCSale, buyer, venue_with_sections


@pytest.fixture
def abc_sale(clock: Clock) -> ABCSale:
    """The A/B/C venue (helpers.py) on sale, opened at T0 by ``clock``: holds last TTL_MS,
    ten seats at most per buyer."""
    clock.now = T0
    premium, standard, a, b, c = venue_with_sections()
    event = EventFactory(
        venue=a.venue,
        sale_status=Event.SaleStatus.DRAFT,
        hold_ttl_seconds=TTL_MS // 1000,
        max_seats_per_hold=10,
    )
    services.event_open_sale(event=event)
    return ABCSale(event, premium, standard, a, b, c)


@pytest.fixture
def alice() -> Client:
    return buyer()


@pytest.fixture
def bob() -> Client:
    return buyer()


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user("boxoffice", is_staff=True))
    return client


@pytest.fixture
def producer():
    """A Kafka producer for the relay's tests (the seat topic made first)."""
    topics_ensure([settings.KAFKA_TOPIC_SEAT_EVENTS])
    producer = kafka_producer_create()
    yield producer
    producer.close(timeout=5)
