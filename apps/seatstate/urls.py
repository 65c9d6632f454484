from django.urls import path

from apps.seatstate import apis

urlpatterns = [
    path("events/<int:event_id>/seats", apis.SeatMapApi.as_view(), name="seat-map"),
]
