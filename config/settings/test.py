"""Test run: real Postgres, Redis and broker (see scripts/backing_services.py), fast hashing."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECRET_KEY = "test-only-not-secret"  # noqa: S105 - tests only
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tests never share Redis keys with a developer's local run on the same server.
SEATS_REDIS_PREFIX = env("SEATS_REDIS_PREFIX", default="seats-test")
CACHES["default"]["KEY_PREFIX"] = f"{SEATS_REDIS_PREFIX}:cache"  # noqa: F405
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{SEATS_REDIS_PREFIX}:celery:"}
