from celery import shared_task

from apps.waitingroom.services import rooms_advance


@shared_task(ignore_result=True)
def rooms_advance_task() -> int:
    """Every second (CELERY_BEAT_SCHEDULE): a late or doubled tick admits no more than the
    time since the last one allows (redis/advance.lua)."""
    return rooms_advance()
