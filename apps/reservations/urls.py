from django.urls import path

from apps.reservations import apis

urlpatterns = [
    path("events/", apis.EventListApi.as_view(), name="event-list"),
    path("events/<int:event_id>", apis.EventDetailApi.as_view(), name="event-detail"),
]
