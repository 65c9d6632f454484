"""Production: every secret and address comes from the environment; HTTPS assumed."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")  # required: no default, so a missing key fails at start
# HTTPS is terminated in front of the proxy, which passes the scheme it saw on
# (config/nginx/seats.conf.template); `manage.py check --deploy` passes with these
# defaults (tests/test_settings.py). A local demo over plain http://localhost turns the
# redirect and the secure cookies off (docker/docker-compose.yml's header says how).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Orchestrators' probes and Prometheus ask the processes over plain HTTP inside the
# network, never through the TLS terminator: a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Browsers remember HSTS for max-age: start lower (e.g. 300) while trying HTTPS out, then
# raise it. Django sends it only on HTTPS responses, so a plain-HTTP demo never sees it.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Only makes the site eligible: nothing is preloaded until someone submits the domain.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
# drf-spectacular would generate the whole OpenAPI schema inside `check --deploy` and
# report how well it describes the views (APIViews without serializers): documentation
# quality, not the deployment's safety, which is what that command is run for.
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "ENABLE_DJANGO_DEPLOY_CHECK": False}  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names let browsers cache static files forever.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# JSON lines for the log collector, unless LOG_FORMAT says otherwise (base.py, logging).
LOGGING["handlers"]["console"]["formatter"] = env("LOG_FORMAT", default="json")  # noqa: F405
