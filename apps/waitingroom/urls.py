from django.urls import path

from apps.waitingroom import apis

urlpatterns = [
    path("events/<int:event_id>/room", apis.RoomApi.as_view(), name="room"),
    path("events/<int:event_id>/room/pass", apis.RoomPassApi.as_view(), name="room-pass"),
]
