"""Settings shared by every environment. Values come from the environment (12-factor)."""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# The OS environment wins over a .env file; the file is only a local convenience.
env.read_env(BASE_DIR / ".env", overwrite=False)

# --- core -----------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",  # must precede staticfiles: its runserver serves WebSockets too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "apps.core",
    "apps.reservations",
    "apps.persistence",
    "apps.seatstate",
    "apps.stats",
    "apps.gateway",
    "apps.waitingroom",
]

MIDDLEWARE = [
    "apps.core.middleware.date_header_middleware",  # outermost: static files get it too
    "apps.core.middleware.request_id_middleware",
    # API bodies whole and bounded, before CSRF or anything else reads them (JSON 411/413).
    "apps.core.http.command_body_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The buyer's seat map (frontend/, built by `make install`): index.html is served by
# apps.gateway.frontend at / and /events/<id>/, the rest by WhiteNoise from this folder.
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
WHITENOISE_ROOT = FRONTEND_DIST
# Vite names every built asset "<name>-<8-char content hash>.<ext>" under assets/: a new
# build gets new names, so browsers may keep these forever.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/?assets/.+-[A-Za-z0-9_-]{8}\.\w+$"
# Prices are stored as decimals without a currency; this is the one they are in.
SEATS_CURRENCY = env("SEATS_CURRENCY", default="EUR")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Form and JSON bodies larger than this are refused before they are read (uploaded files,
# such as venue layouts, do not count against it).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

# --- database: Postgres holds the catalog and the projections ---------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/seats"),
}
# Under ASGI every request may run in another thread, so persistent per-thread
# connections pile up; a psycopg pool shares a bounded set instead.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 1,
    "max_size": env.int("DATABASE_POOL_SIZE", default=10),
}

# --- redis: the write side's seat inventory, the cache and the channel layer ------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# REDIS_CLUSTER=true: REDIS_URL is one node of a Redis Cluster (database 0; the client finds
# the other nodes) and everything that uses apps/core/redis.py runs on the cluster. The
# cache (sessions) and Celery's broker have no cluster client and stay on plain Redis
# servers, which must then be named: CACHE_REDIS_URL and CELERY_BROKER_URL
# (docs/architecture.md, "Redis Cluster").
REDIS_CLUSTER = env.bool("REDIS_CLUSTER", default=False)
if REDIS_CLUSTER:
    for _plain in ("CACHE_REDIS_URL", "CELERY_BROKER_URL"):
        if not env.str(_plain, default=""):
            raise ImproperlyConfigured(
                f"REDIS_CLUSTER is on: set {_plain} to a plain Redis server, not the cluster "
                '(docs/architecture.md, "Redis Cluster")'
            )
# Every key the platform writes starts with this, so tests (and several deployments on
# one Redis) stay apart.
SEATS_REDIS_PREFIX = env("SEATS_REDIS_PREFIX", default="seats")
# Sessions live in the cache: a buyer's first hold creates one, and a database write per
# anonymous buyer is the last thing an on-sale stampede needs. The cache has a Redis of its
# own where it is deployed (compose: the `cache` service, capped and evicting least
# recently used keys), because eviction is a setting of the whole server: on the
# inventory's Redis (noeviction) it could otherwise only ever be all or nothing, and a
# seat must never be evicted. Unset, it is the inventory's server (make run and tests:
# nothing there is capped, so nothing is evicted; docs/architecture.md, "Sessions and
# Redis memory").
CACHE_REDIS_URL = env("CACHE_REDIS_URL", default=REDIS_URL)
# apps/core/sessions.py: Django's cache sessions, except that an anonymous buyer's expires
# after this many seconds without use (logged-in users keep SESSION_COOKIE_AGE). Longer
# than any hold can live (3 × an event's hold ttl), so no live hold loses its buyer.
SESSION_ENGINE = "apps.core.sessions"
SEATS_ANONYMOUS_SESSION_TTL = env.int("SEATS_ANONYMOUS_SESSION_TTL", default=4 * 3600)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": f"{SEATS_REDIS_PREFIX}:cache",
    }
}

# --- kafka: the event log between the write side and every projection -------------------
KAFKA_BOOTSTRAP_SERVERS = env.list("KAFKA_BOOTSTRAP_SERVERS", default=["127.0.0.1:9092"])
KAFKA_TOPIC_SEAT_EVENTS = env("KAFKA_TOPIC_SEAT_EVENTS", default="seat-events")
KAFKA_TOPIC_STATS_EVENTS = env("KAFKA_TOPIC_STATS_EVENTS", default="stats-events")
# Consumer groups are "<prefix>-<consumer>": a second deployment (or a test's own stack) on
# the same broker needs its own.
KAFKA_GROUP_PREFIX = env("KAFKA_GROUP_PREFIX", default="seats")
# An event's outbox keeps each envelope until every projection applied it, but never more
# than this many entries (about 0.5 KB each): past it the oldest ones the broker has go
# (docs/architecture.md, "Gaps and repair").
SEATS_OUTBOX_KEEP_MAX = env.int("SEATS_OUTBOX_KEEP_MAX", default=1_000_000)

# --- channels and the live map ---------------------------------------------------------
# The live map's frames do not go through the channel layer: the gateway bridge PUBLISHes
# one frame per event and window, and each web process writes it to its own sockets
# (apps/gateway/fanout.py, docs/architecture.md, Gateway). Nothing uses the layer today
# (the event socket opts out: channel_layer_alias in apps/gateway/consumers.py); it stays
# configured so that Channels' groups work for whatever comes to need them. It only
# PUBLISHes and SUBSCRIBEs (no keys), so on a Redis Cluster it works through the node
# REDIS_URL names: classic Pub/Sub reaches every node (channels_redis has no cluster client).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{SEATS_REDIS_PREFIX}:asgi"},
    }
}
# How long the bridge lets an event's changes gather into one frame when they come fast
# (an idle event's first change goes out at once): long enough that a web process writes
# at most LIVE_WRITES_PER_S frames a second to the event's sockets, within these bounds.
# 8,000 writes/s is about a third of a core of daphne (bench/gateway.py).
LIVE_COALESCE_MS = env.int("LIVE_COALESCE_MS", default=50)
LIVE_COALESCE_MAX_MS = env.int("LIVE_COALESCE_MAX_MS", default=400)
LIVE_WRITES_PER_S = env.int("LIVE_WRITES_PER_S", default=8_000)

# --- celery: periodic jobs (hold expiry sweep, waiting rooms' admission tick) ----------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/1")
# Celery's queues start with the platform's prefix too, so two deployments (or a test's own
# stack) sharing one Redis never run each other's tasks.
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{SEATS_REDIS_PREFIX}:celery:"}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Makes expiry visible (seat.released, reason expired); correctness never waits for
    # it, because the scripts already treat an expired hold as free.
    "holds-expire": {
        "task": "apps.reservations.tasks.holds_expire_task",
        "schedule": 1.0,
        # A sweep that waited longer than this is superseded by the next one.
        "options": {"expires": 5},
    },
    # Admits buyers from every waiting room that is on, and tells those who wait.
    "rooms-advance": {
        "task": "apps.waitingroom.tasks.rooms_advance_task",
        "schedule": 1.0,
        "options": {"expires": 2},
    },
}

# --- api: DRF and its OpenAPI schema ---------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.core.http.SessionCsrfAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    # Per buyer; an on-sale needs a few commands a second per buyer at most.
    "DEFAULT_THROTTLE_RATES": {"commands": env("SEATS_COMMAND_RATE", default="120/min")},
    # How many proxies of ours stand in front of the web processes: the client's address
    # is the one the outermost of them appended to X-Forwarded-For (apps/core/addresses.py).
    # 0: REMOTE_ADDR, and the header is ignored. `make run` and compose run nginx: 1.
    "NUM_PROXIES": env.int("SEATS_TRUSTED_PROXIES", default=0),
}

# --- abuse limits: per client address, for what a session does not bound -----------------
# (docs/architecture.md, "Abuse limits"). Sessions are free to make: new ones per address
# in a window (0: no limit), and seats held at once by the anonymous sessions of one
# address, as a multiple of the event's seats per buyer (0: no cap). Logged-in buyers
# keep their own cap only.
SEATS_NEW_BUYERS_PER_ADDRESS = env.int("SEATS_NEW_BUYERS_PER_ADDRESS", default=30)
SEATS_NEW_BUYERS_WINDOW_S = env.int("SEATS_NEW_BUYERS_WINDOW_S", default=600)
SEATS_ADDRESS_HOLD_FACTOR = env.int("SEATS_ADDRESS_HOLD_FACTOR", default=4)
# Waiting rooms (docs/architecture.md, Waiting room): new places per address and event
# within SEATS_NEW_BUYERS_WINDOW_S (0: no limit), and how long an admitted buyer has to
# take their pass before their place is dropped.
SEATS_ROOM_PLACES_PER_ADDRESS = env.int("SEATS_ROOM_PLACES_PER_ADDRESS", default=30)
SEATS_ROOM_CLAIM_S = env.int("SEATS_ROOM_CLAIM_S", default=120)
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Seats API",
    "DESCRIPTION": "Real-time seat reservation: catalog, holds, reservations, seat map, stats.",
    "VERSION": "0.1.0",
}

# --- logging: one line per record on stderr; the process supervisor collects it ---------
# Every line says which request (and, in the Kafka consumers, which envelope) it is about
# (apps/core/logs.py). Production writes JSON lines (config/settings/production.py).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(envelope_id)s] %(message)s"
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "apps.core.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": LOG_FORMAT},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": LOG_FORMAT,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", default="plain"),
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "kafka": {"level": "WARNING"},
        # One line per request (method, path, status, time): on in production, where the
        # web server writes none; quiet by default in a local run's console.
        "apps.core.access": {"level": env("ACCESS_LOG_LEVEL", default="INFO")},
    },
}
