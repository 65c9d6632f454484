from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView

from apps.core import health
from apps.core.apis import ApiRootApi
from apps.gateway.frontend import frontend_index

api_patterns: list[URLPattern | URLResolver] = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("apps.reservations.urls")),
    path("", include("apps.seatstate.urls")),
    path("", include("apps.persistence.urls")),
    path("", include("apps.stats.urls")),
    path("", include("apps.waitingroom.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    # Operations (docs/api.md): probes and Prometheus; the proxy does not pass /metrics.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    # The seat map app's own routes (frontend/src/App.tsx).
    path("", frontend_index, name="frontend-events"),
    path("events/<int:event_id>/", frontend_index, name="frontend-event"),
]

# Under /api/, the API's JSON error shape (apps/core/apis.py); Django's pages elsewhere.
handler400 = "apps.core.apis.bad_request"
handler404 = "apps.core.apis.not_found"
