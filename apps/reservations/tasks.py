from celery import shared_task

from apps.reservations.services import holds_expire


@shared_task(ignore_result=True)
def holds_expire_task() -> int:
    return holds_expire()
