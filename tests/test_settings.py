import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "db": [db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]],
    "redis": settings.REDIS_URL,
    "kafka": settings.KAFKA_BOOTSTRAP_SERVERS,
    "celery": settings.CELERY_BROKER_URL,
    "hosts": settings.ALLOWED_HOSTS,
    "secret": settings.SECRET_KEY,
    "debug": settings.DEBUG,
}))
"""


def _settings_in(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_come_from_the_environment():
    result = _settings_in(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": "postgres://app:pw@db.internal:6543/tickets",
            "REDIS_URL": "redis://cache.internal:7000/2",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "CELERY_BROKER_URL": "redis://cache.internal:7000/3",
            "SECRET_KEY": "from-the-env",
            "ALLOWED_HOSTS": "seats.example,www.seats.example",
        }
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "db": ["db.internal", 6543, "tickets", "app", "pw"],
        "redis": "redis://cache.internal:7000/2",
        "kafka": ["k1:9092", "k2:9092"],
        "celery": "redis://cache.internal:7000/3",
        "hosts": ["seats.example", "www.seats.example"],
        "secret": "from-the-env",
        "debug": False,
    }


def test_production_refuses_to_start_without_a_secret_key():
    result = _settings_in({"DJANGO_SETTINGS_MODULE": "config.settings.production"})
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_local_settings_default_to_the_local_ports():
    result = _settings_in({"DJANGO_SETTINGS_MODULE": "config.settings.local"})
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["db"][:3] == ["127.0.0.1", 5432, "seats"]
    assert loaded["redis"] == "redis://127.0.0.1:6379/0"
    assert loaded["kafka"] == ["127.0.0.1:9092"]
    assert loaded["debug"] is True


@pytest.mark.django_db
def test_migrations_are_complete():
    # Exits non-zero (SystemExit) if a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


# --- production hardening (`manage.py check --deploy`) ---------------------------------

PROBE_REDIRECTS = """
import json, django
django.setup()
from django.test import Client
client, https = Client(), {"X-Forwarded-Proto": "https"}
print(json.dumps({
    path: [client.get(path).status_code, client.get(path, headers=https).status_code]
    for path in ("/healthz", "/metrics", "/readyz", "/no-such-page")
}))
"""


def _production_env(**extra: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        # Long and random: check --deploy warns about short or low-entropy keys.
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "seats.example,testserver",
        **extra,
    }


def test_production_settings_pass_check_deploy_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **_production_env()},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_production_redirects_plain_http_except_the_probes():
    services = {
        name: os.environ[name]
        for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
        if name in os.environ
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE_REDIRECTS],
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **services, **_production_env()},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    # Orchestrators and Prometheus ask over plain HTTP inside the network.
    assert codes["/healthz"] == [200, 200]
    assert codes["/metrics"] == [200, 200]
    assert 301 not in codes["/readyz"], codes  # 200 or 503: answered, not redirected
    # Everything else over plain HTTP goes to HTTPS; behind the TLS terminator it is served.
    assert codes["/no-such-page"] == [301, 404]


CACHE_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps([settings.REDIS_URL, settings.CACHES["default"]["LOCATION"],
                  settings.SESSION_ENGINE, settings.SEATS_ANONYMOUS_SESSION_TTL]))
"""


def _cache_settings(**env: str) -> list:
    result = subprocess.run(
        [sys.executable, "-c", CACHE_SETTINGS],
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **_production_env(), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sessions_go_to_the_caches_own_redis_when_it_has_one():
    inventory, cache = "redis://inventory.internal:6379/0", "redis://cache.internal:6379/0"
    alone = _cache_settings(REDIS_URL=inventory)
    apart = _cache_settings(REDIS_URL=inventory, CACHE_REDIS_URL=cache)
    shorter = _cache_settings(SEATS_ANONYMOUS_SESSION_TTL="600")

    # One server where nothing is capped (make run, tests); its own where it evicts.
    assert alone == [inventory, inventory, "apps.core.sessions", 4 * 3600]
    assert apart == [inventory, cache, "apps.core.sessions", 4 * 3600]
    assert shorter[3] == 600
