"""The waiting room in the event's admin page (docs/architecture.md, Waiting room, "For
staff"): its settings inline on the event's form, its figures in the box office, and
pause / resume / rate during the sale. Every change must reach Redis, where the room runs;
it does so once the transaction commits, hence ``django_capture_on_commit_callbacks``."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from apps.core.redis import redis_client_get
from apps.reservations import services as sale_services
from apps.reservations.errors import NotAdmitted
from apps.reservations.models import Event
from apps.waitingroom import services, store
from apps.waitingroom.models import WaitingRoom
from apps.waitingroom.selectors import room_figures
from apps.waitingroom.tests.helpers import START_MS, tick

pytestmark = pytest.mark.django_db

NO_RATE_NOR_CAP = "Set an admission rate, a cap on active buyers, or both."


def staff_with(django_user_model, username: str, *codenames: str) -> Client:
    user = django_user_model.objects.create_user(username, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def box_office(django_user_model) -> Client:
    """Staff who run sales: events and their waiting rooms, nothing of the venues."""
    return staff_with(
        django_user_model,
        "boxoffice",
        "view_event",
        "change_event",
        "view_waitingroom",
        "add_waitingroom",
        "change_waitingroom",
    )


def change_url(event: Event) -> str:
    return reverse("admin:reservations_event_change", args=[event.pk])


def event_form(event: Event, *, initial: int = 0, **room: object) -> dict:
    """The event's change form as the browser posts it, with the room inline's ``room``
    fields (a checkbox left out is unticked)."""
    starts = timezone.localtime(event.starts_at)
    data = {
        "name": event.name,
        "starts_at_0": starts.strftime("%Y-%m-%d"),
        "starts_at_1": starts.strftime("%H:%M:%S"),
        "hold_ttl_seconds": event.hold_ttl_seconds,
        "max_seats_per_hold": event.max_seats_per_hold,
        "waiting_room-TOTAL_FORMS": "1",
        "waiting_room-INITIAL_FORMS": str(initial),
        "waiting_room-MIN_NUM_FORMS": "0",
        "waiting_room-MAX_NUM_FORMS": "1",
        "waiting_room-0-event": str(event.pk),
        "_save": "Save",
    }
    data.update({f"waiting_room-0-{name}": value for name, value in room.items()})
    return data


def room_on_in_redis(event: Event) -> bool:
    """Whether buyer commands need a pass (the flag the command scripts read), and the
    ticker admits in the room."""
    ticked = redis_client_get().sismember(store.rooms_index_key(), event.pk)
    try:
        sale_services.hold_create(event_id=event.pk, holder="session:probe", seats=["A-1-1"])
    except NotAdmitted:
        return bool(ticked)
    assert not ticked
    return False


def room_cell(figure: str, value: object) -> str:
    return f'<td data-room="{figure}">{value}</td>'


# --- the settings, inline on the event's form ------------------------------------------


@pytest.mark.parametrize(("starts", "state"), [("2040-01-02", "before"), ("2020-01-02", "open")])
def test_adding_the_room_on_the_event_page_puts_it_into_redis(
    box_office, sale, django_capture_on_commit_callbacks, starts, state
):
    form = event_form(
        sale,
        enabled="on",
        sale_starts_at_0=starts,
        sale_starts_at_1="10:00:00",
        rate_per_minute="120",
        max_active="",
        pass_minutes="15",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = box_office.post(change_url(sale), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    room = WaitingRoom.objects.get(event=sale)
    assert (room.enabled, room.rate_per_minute, room.max_active) == (True, 120, None)
    assert (room.pass_minutes, room.paused) == (15, False)
    assert room.sale_starts_at.isoformat() == f"{starts}T10:00:00+00:00"
    figures = room_figures(event_id=sale.pk)
    assert (figures["state"], figures["rate_per_minute"], figures["waiting"]) == (state, 120, 0)
    assert room_on_in_redis(sale)
    page = box_office.get(change_url(sale))
    assertContains(page, room_cell("state", state), html=True)
    assertContains(page, "Pause admissions")


def test_turning_the_room_off_on_the_event_page_turns_it_off_in_redis(
    box_office, room, django_capture_on_commit_callbacks
):
    assert room_on_in_redis(room.event)
    form = event_form(
        room.event,
        initial=1,
        sale_starts_at_0="2030-03-04",
        sale_starts_at_1="10:00:00",
        rate_per_minute="60",
        pass_minutes="10",
    )  # "enabled" unticked

    with django_capture_on_commit_callbacks(execute=True):
        response = box_office.post(change_url(room.event), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    room.refresh_from_db()
    assert not room.enabled
    assert room_figures(event_id=room.event_id)["state"] == "off"
    assert not room_on_in_redis(room.event)


def test_enabling_without_a_rate_or_a_cap_is_refused_by_the_form(
    box_office, sale, django_capture_on_commit_callbacks
):
    form = event_form(
        sale,
        enabled="on",
        sale_starts_at_0="2020-01-02",
        sale_starts_at_1="10:00:00",
        rate_per_minute="",
        max_active="",
        pass_minutes="20",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = box_office.post(change_url(sale), form)

    assertContains(response, NO_RATE_NOR_CAP)  # the form again, with the reason
    assert not WaitingRoom.objects.filter(event=sale).exists()
    assert room_figures(event_id=sale.pk)["state"] == "off"
    assert not room_on_in_redis(sale)


# --- the box office -----------------------------------------------------------------------


def test_the_box_office_shows_the_rooms_figures(admin_client, room, clock, update, settings):
    clock.now = START_MS
    buyers = [f"session:{i}" for i in range(5)]
    for buyer in buyers:
        services.room_join(event_id=room.event_id, buyer=buyer, address="10.0.0.1")
    tick(clock, 2000)  # two admitted
    services.room_pass_claim(event_id=room.event_id, buyer=buyers[0])
    update(room, paused=True)
    tick(clock, settings.SEATS_ROOM_CLAIM_S * 1000 + 1000)  # the second never came

    response = admin_client.get(change_url(room.event))

    for figure, value in (
        ("state", "paused"),
        ("waiting", 3),
        ("admitted", 2),
        ("active", 1),
        ("dropped", 1),
        ("rate", 60),
    ):
        assertContains(response, room_cell(figure, value), html=True)
    assertContains(response, "Resume admissions")
    assertNotContains(response, "Pause admissions")


def test_an_event_without_a_room_shows_no_room_figures(admin_client, sale):
    response = admin_client.get(change_url(sale))
    assert response.status_code == 200
    assertNotContains(response, 'id="waiting-room"')


def control(client: Client, room: WaitingRoom, capture, **data: str):
    with capture(execute=True):
        return client.post(
            reverse("admin:reservations_event_room", args=[room.event_id]), data, follow=True
        )


def test_pause_resume_and_the_rate_from_the_box_office(
    admin_client, room, clock, django_capture_on_commit_callbacks
):
    clock.now = START_MS
    capture = django_capture_on_commit_callbacks

    paused = control(admin_client, room, capture, action="pause")

    assert paused.redirect_chain == [(change_url(room.event), 302)]
    assertContains(paused, "The waiting room is updated.")
    room.refresh_from_db()
    assert room.paused
    assert room_figures(event_id=room.event_id)["state"] == "paused"

    control(admin_client, room, capture, action="resume")
    room.refresh_from_db()
    assert not room.paused
    assert room_figures(event_id=room.event_id)["state"] == "open"

    control(admin_client, room, capture, action="rate", rate_per_minute="240")
    room.refresh_from_db()
    assert room.rate_per_minute == 240
    assert room_figures(event_id=room.event_id)["rate_per_minute"] == 240


@pytest.mark.parametrize("rate", ["0", "-5", "abc", ""])
def test_an_invalid_rate_shows_an_error_and_changes_nothing(
    admin_client, room, clock, django_capture_on_commit_callbacks, rate
):
    response = control(
        admin_client, room, django_capture_on_commit_callbacks, action="rate", rate_per_minute=rate
    )

    assertContains(response, "The waiting room was not changed")
    assertNotContains(response, "The waiting room is updated.")
    if rate == "":  # no rate and no cap
        assertContains(response, NO_RATE_NOR_CAP)
    room.refresh_from_db()
    assert room.rate_per_minute == 60
    assert room_figures(event_id=room.event_id)["rate_per_minute"] == 60


def test_the_controls_answer_only_posts_of_known_actions(
    admin_client, room, clock, django_capture_on_commit_callbacks
):
    url = reverse("admin:reservations_event_room", args=[room.event_id])
    assert admin_client.get(url).status_code == 405
    assert admin_client.post(url, {"action": "explode"}).status_code == 400
    missing = reverse("admin:reservations_event_room", args=[room.event_id + 1000])
    assert admin_client.post(missing, {"action": "pause"}).status_code == 404
    room.refresh_from_db()
    assert room_figures(event_id=room.event_id)["state"] == "before"
    assert not room.paused


def test_the_controls_need_the_right_to_change_the_event(
    box_office, django_user_model, room, clock, django_capture_on_commit_callbacks
):
    url = reverse("admin:reservations_event_room", args=[room.event_id])
    layout_staff = staff_with(django_user_model, "layouts", "view_venue", "change_venue")
    watcher = staff_with(django_user_model, "watcher", "view_event", "view_waitingroom")

    with django_capture_on_commit_callbacks(execute=True):
        refused = [c.post(url, {"action": "pause"}) for c in (layout_staff, watcher)]
    assert [r.status_code for r in refused] == [403, 403]
    assert room_figures(event_id=room.event_id)["state"] == "before"

    paused = control(box_office, room, django_capture_on_commit_callbacks, action="pause")
    assertContains(paused, "The waiting room is updated.")
    assert room_figures(event_id=room.event_id)["paused"]
    assert url.startswith(f"/admin/reservations/event/{room.event_id}/")
