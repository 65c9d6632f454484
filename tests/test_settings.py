import json
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
