"""The buyer's pages: the built React app's index.html, for every path the app routes itself.

WhiteNoise serves the app's hashed assets (settings.WHITENOISE_ROOT, cached forever); the
page itself must never be cached, or a browser would keep asking for the assets of an old
build. It also sets the CSRF cookie the app's commands send back.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

NOT_BUILT = (
    "The seat map is not built: run `make install` (or `npm ci && npm run build` in frontend/).\n"
)


@require_safe
@ensure_csrf_cookie
def frontend_index(request: HttpRequest, **kwargs: object) -> HttpResponse:
    index = settings.FRONTEND_DIST / "index.html"
    try:
        html = index.read_bytes()  # a few hundred bytes, from the page cache
    except FileNotFoundError:
        return HttpResponse(NOT_BUILT, status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    patch_cache_control(response, no_cache=True)
    return response
