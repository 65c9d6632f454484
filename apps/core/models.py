"""Tables shared by every projection."""

from django.db import models


class ProjectionCursor(models.Model):
    """The last ``seq`` of one event that one Kafka consumer has applied.

    Delivery is at least once; a consumer updates its cursor in the same transaction as the
    projection rows, so a redelivered envelope (``seq <= last_seq``) is recognised and skipped
    no matter where the process died.
    """

    consumer = models.CharField(max_length=100)
    event_id = models.BigIntegerField()
    last_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "event_id"], name="uniq_cursor_per_consumer_event"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} event {self.event_id} @ {self.last_seq}"
