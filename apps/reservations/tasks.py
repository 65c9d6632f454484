from celery import shared_task

from apps.core import metrics
from apps.reservations.services import holds_expire


@shared_task(ignore_result=True)
def holds_expire_task() -> int:
    metrics.heartbeat("celery")  # the sweep runs every second: the worker's liveness
    ended = holds_expire()
    metrics.HOLDS_EXPIRED.inc(ended)
    return ended
