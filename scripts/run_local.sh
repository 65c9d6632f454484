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
# The proxy appends each client's address to X-Forwarded-For: the per-address limits read
# it there (docs/architecture.md, "Abuse limits").
export SEATS_TRUSTED_PROXIES="${SEATS_TRUSTED_PROXIES:-1}"
# Metrics (docs/architecture.md, Observability): the web and ws processes write theirs under
# SEATS_METRICS_DIR (emptied here: prometheus_client's multi-process files of a past run must
# not count), each worker serves its own port from SEATS_METRICS_BASE + 1 (see the Procfile).
export SEATS_METRICS_DIR="${SEATS_METRICS_DIR:-.local/metrics}"
export SEATS_METRICS_BASE="${SEATS_METRICS_BASE:-$((SEATS_PORT + 10))}"
rm -rf "$SEATS_METRICS_DIR"
mkdir -p .local "$SEATS_METRICS_DIR"

python manage.py migrate --noinput
python manage.py seed_demo
python manage.py demo_admin --password-file .local/admin-password

echo
echo "Seats is starting at http://127.0.0.1:${SEATS_PORT}/  (admin: /admin/, API: /api/). Ctrl-C stops it."
echo
exec honcho start -f Procfile
