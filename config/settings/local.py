"""Local development: debug on, a throwaway secret, static files served from the finders."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-development-only-not-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
WHITENOISE_USE_FINDERS = True
# WhiteNoise would otherwise look every request's path up on disk (its DEBUG default),
# 3-6% of a hold's CPU (docs/architecture.md, "Serving HTTP"). It indexes the built
# app and the static files when the web process starts: after `npm run build`, restart
# `make run` (working on the app itself is `npm run dev`, frontend/README.md).
WHITENOISE_AUTOREFRESH = False
# A local run's console shows what goes wrong, not every request (ACCESS_LOG_LEVEL=INFO does).
LOGGING["loggers"]["apps.core.access"]["level"] = env("ACCESS_LOG_LEVEL", default="WARNING")  # noqa: F405
