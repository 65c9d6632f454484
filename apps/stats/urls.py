from django.urls import path

from apps.stats import apis

urlpatterns = [
    path("stats/event/<int:event_id>", apis.EventStatsApi.as_view(), name="event-stats"),
    path(
        "stats/event/<int:event_id>/section/<int:section_id>",
        apis.SectionStatsApi.as_view(),
        name="section-stats",
    ),
]
