import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("seats")
# Every Celery setting lives in Django settings under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _metrics_serve(**kwargs: object) -> None:
    """The worker's metrics on SEATS_METRICS_PORT (docs/architecture.md, Observability).

    Tasks must run in this process for their metrics to show here: the Procfile and the
    compose file start the worker with the threads pool."""
    from apps.core.metrics import metrics_port, metrics_server_start

    metrics_server_start(metrics_port())
