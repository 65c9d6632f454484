"""WSGI entry point: the web process (granian's workers) serves every HTTP request through
it; WebSockets go to daphne (config/asgi.py). docs/architecture.md, "Serving HTTP"."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()
