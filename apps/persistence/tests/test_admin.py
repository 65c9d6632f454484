import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.persistence.models import Reservation
from apps.persistence.services import reservation_record
from apps.persistence.tests.helpers import outbox_envelopes, outbox_last, reserve

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:persistence_reservation_changelist"


@pytest.fixture
def recorded(sale) -> list[Reservation]:
    ids = [
        reserve(sale, ["A-1-1", "A-1-2"], holder="user:7"),
        reserve(sale, ["V-1-1"], holder="session:abc123"),
    ]
    for envelope in outbox_envelopes(sale):
        if envelope.type == "seat.reserved":
            reservation_record(envelope=envelope)
    return [Reservation.objects.get(pk=i) for i in ids]


def _listed(response) -> set[str]:
    return {str(r.pk) for r in response.context["cl"].result_list}


def test_the_pages_render_and_nothing_can_be_edited_by_hand(admin_client, recorded):
    first = recorded[0]
    changelist = admin_client.get(reverse(CHANGELIST))
    assert changelist.status_code == 200
    assert _listed(changelist) == {str(r.pk) for r in recorded}
    assert b"A-1-1, A-1-2" in changelist.content

    detail = admin_client.get(reverse("admin:persistence_reservation_change", args=[first.pk]))
    assert detail.status_code == 200
    assert b"A-1-2" in detail.content
    assert b'name="holder"' not in detail.content  # shown, not editable

    add = admin_client.get(reverse("admin:persistence_reservation_add"))
    delete = admin_client.get(reverse("admin:persistence_reservation_delete", args=[first.pk]))
    assert (add.status_code, delete.status_code) == (403, 403)
    post = admin_client.post(
        reverse("admin:persistence_reservation_change", args=[first.pk]), {"holder": "x"}
    )
    assert post.status_code == 403
    assert Reservation.objects.get(pk=first.pk).holder == "user:7"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "user:7"}, [0]),
        ({"q": "V-1-1"}, [1]),
        ({"q": "A-1"}, [0]),
        ({"status__exact": "reserved"}, [0, 1]),
        ({"status__exact": "cancelled"}, []),
    ],
)
def test_search_and_filters(admin_client, recorded, query, expected):
    response = admin_client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    assert _listed(response) == {str(recorded[i].pk) for i in expected}


def test_search_by_reservation_id_and_filter_by_event(admin_client, recorded, sale):
    wanted = recorded[1]
    by_id = admin_client.get(reverse(CHANGELIST), {"q": str(wanted.pk)})
    by_event = admin_client.get(reverse(CHANGELIST), {"event__id__exact": sale.pk})
    assert _listed(by_id) == {str(wanted.pk)}
    assert _listed(by_event) == {str(r.pk) for r in recorded}


def test_csv_export_of_the_selected_reservations(admin_client, recorded, sale):
    first, second = recorded
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "export_csv", "_selected_action": [str(first.pk), str(second.pk)]},
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    listed = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(row["reservation_id"] for row in listed) == sorted(
        [str(first.pk), str(second.pk)]
    )
    # Both may share a created_at (same millisecond), so match rows by id, not position.
    by_id = {row["reservation_id"]: row for row in listed}
    rows = [by_id[str(first.pk)], by_id[str(second.pk)]]
    assert rows[0]["event_id"] == str(sale.pk)
    assert rows[0]["event"] == str(sale)
    assert (rows[0]["holder"], rows[0]["status"]) == ("user:7", "reserved")
    assert (rows[0]["seats"], rows[0]["total"]) == ("A-1-1 A-1-2", "100.00")
    assert (rows[1]["seats"], rows[1]["total"]) == ("V-1-1", "80.00")
    assert rows[0]["created_at"] == first.created_at.isoformat()
    assert rows[0]["cancelled_at"] == ""


def test_cancel_asks_first_then_calls_the_write_side(admin_client, recorded, sale):
    reservation = recorded[0]
    form = {"action": "cancel_reservations", "_selected_action": [str(reservation.pk)]}
    before = len(outbox_envelopes(sale))

    confirmation = admin_client.post(reverse(CHANGELIST), form)

    assert confirmation.status_code == 200
    assert b"Yes, cancel them" in confirmation.content
    assert len(outbox_envelopes(sale)) == before  # nothing sent yet

    done = admin_client.post(reverse(CHANGELIST), {**form, "post": "yes"})

    assert done.status_code == 302
    released = outbox_last(sale, "seat.released")
    assert released.data["reason"] == "cancelled"
    assert released.data["reservation_id"] == str(reservation.pk)
    assert sorted(released.data["seats"]) == ["A-1-1", "A-1-2"]
    # The row changes only when that event comes back through the consumer.
    assert Reservation.objects.get(pk=reservation.pk).status == "reserved"


def test_cancelling_twice_reports_the_write_sides_refusal(admin_client, recorded, sale):
    reservation = recorded[1]
    form = {
        "action": "cancel_reservations",
        "_selected_action": [str(reservation.pk)],
        "post": "yes",
    }
    admin_client.post(reverse(CHANGELIST), form)

    again = admin_client.post(reverse(CHANGELIST), form, follow=True)

    messages = [str(m) for m in again.context["messages"]]
    assert any("already cancelled" in m for m in messages), messages
    assert len([e for e in outbox_envelopes(sale) if e.type == "seat.released"]) == 1


def test_staff_without_the_cancel_permission_cannot_cancel(client, recorded, sale):
    clerk = get_user_model().objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_reservation"))
    client.force_login(clerk)

    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert b"export_csv" in page.content
    assert b"cancel_reservations" not in page.content

    form = {
        "action": "cancel_reservations",
        "_selected_action": [str(recorded[0].pk)],
        "post": "yes",
    }
    client.post(reverse(CHANGELIST), form)
    assert not [e for e in outbox_envelopes(sale) if e.type == "seat.released"]
