"""Seat counts and revenue per event and per section (the ``stats`` consumer's projection).

Rows are written only by ``stats_apply`` from the seat events; the catalog decides which
seats exist (``total``), the events move them between states.
"""

from decimal import Decimal

from django.db import models

from apps.reservations.models import Event, Section


class StatsCounts(models.Model):
    total = models.IntegerField(default=0)
    free = models.IntegerField(default=0)
    held = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    blocked = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class EventStats(StatsCounts):
    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="stats")
    # The event's seq these counts are consistent with (the last seat event applied).
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "event stats"

    def __str__(self) -> str:
        return f"stats of event {self.event_id} @ {self.last_seq}"


class SectionStats(StatsCounts):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="section_stats")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name_plural = "section stats"
        ordering = ["event", "section"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "section"], name="uniq_section_stats_per_event"
            ),
        ]

    def __str__(self) -> str:
        return f"stats of event {self.event_id} section {self.section_id}"
