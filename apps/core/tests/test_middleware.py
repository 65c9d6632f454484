import time
from email.utils import parsedate_to_datetime

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/events/", "/api/nowhere"])
def test_every_response_says_when_it_was_made(path):
    before = int(time.time())
    response = Client().get(path, HTTP_ACCEPT="application/json")
    after = time.time()

    assert before <= parsedate_to_datetime(response["Date"]).timestamp() <= after
