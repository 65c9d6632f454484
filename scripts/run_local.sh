#!/usr/bin/env bash
# The part of `make run` that runs once the backing services answer (their URLs are in
# the environment): prepare the database, then hand over to honcho.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
# The one origin (nginx, the Procfile's proxy) and, behind it, the HTTP and WebSocket servers.
export SEATS_PORT="${SEATS_PORT:-8000}"
export SEATS_HTTP_PORT="${SEATS_HTTP_PORT:-$((SEATS_PORT + 1))}"
export SEATS_WS_PORT="${SEATS_WS_PORT:-$((SEATS_PORT + 2))}"
mkdir -p .local

python manage.py migrate --noinput
python manage.py seed_demo
python manage.py demo_admin --password-file .local/admin-password

echo
echo "Seats is starting at http://127.0.0.1:${SEATS_PORT}/  (admin: /admin/, API: /api/). Ctrl-C stops it."
echo
exec honcho start -f Procfile
