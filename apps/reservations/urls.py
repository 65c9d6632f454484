from django.urls import path

from apps.core.idempotency import idempotent
from apps.reservations import apis

urlpatterns = [
    path("events/", apis.EventListApi.as_view(), name="event-list"),
    path("events/<int:event_id>", apis.EventDetailApi.as_view(), name="event-detail"),
    path("events/<int:event_id>/layout", apis.EventLayoutApi.as_view(), name="event-layout"),
    path(
        "events/<int:event_id>/holds",
        idempotent(apis.HoldCreateApi.as_view()),
        name="hold-create",
    ),
    path(
        "holds/<str:hold_token>/extend",
        idempotent(apis.HoldExtendApi.as_view()),
        name="hold-extend",
    ),
    path(
        "holds/<str:hold_token>/release",
        idempotent(apis.HoldReleaseApi.as_view()),
        name="hold-release",
    ),
    path(
        "holds/<str:hold_token>/reserve",
        idempotent(apis.HoldReserveApi.as_view()),
        name="hold-reserve",
    ),
    path(
        "events/<int:event_id>/block",
        idempotent(apis.SeatsBlockApi.as_view()),
        name="seats-block",
    ),
    path(
        "events/<int:event_id>/unblock",
        idempotent(apis.SeatsUnblockApi.as_view()),
        name="seats-unblock",
    ),
    path(
        "events/<int:event_id>/reservations/<str:reservation_id>/cancel",
        idempotent(apis.ReservationCancelApi.as_view()),
        name="reservation-cancel",
    ),
]
