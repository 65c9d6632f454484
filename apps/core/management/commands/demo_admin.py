import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Local runs only: make sure a superuser 'admin' exists, with a random password kept "
        "in a git-ignored file, and print how to log in."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--password-file", type=Path, required=True)

    def handle(self, *args: object, password_file: Path, **options: object) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_admin only runs with DEBUG on (local development).")
        User = get_user_model()  # noqa: N806 - Django's convention for the user class
        # A random password per checkout, never a well-known one: a local run can be
        # reachable from the network.
        if not User.objects.filter(username="admin").exists() or not password_file.exists():
            password = secrets.token_urlsafe(12)
            user = User.objects.filter(username="admin").first()
            if user is None:
                User.objects.create_superuser("admin", "admin@localhost", password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        self.stdout.write(f"Admin login: admin / {password}  (kept in {password_file})")
