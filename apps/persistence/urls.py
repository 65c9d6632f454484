from django.urls import path

from apps.persistence import apis

urlpatterns = [
    path(
        "reservations/<str:reservation_id>",
        apis.ReservationDetailApi.as_view(),
        name="reservation-detail",
    ),
]
