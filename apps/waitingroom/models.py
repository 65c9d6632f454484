"""Staff's settings of an event's waiting room. The queue and the admissions themselves
live in Redis (store.py), where every web process and the ticker agree on them."""

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from apps.reservations.models import Event


class WaitingRoom(models.Model):
    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, primary_key=True, related_name="waiting_room"
    )
    enabled = models.BooleanField(
        default=False,
        help_text="While on, buyers queue and only admitted ones may hold or buy seats.",
    )
    sale_starts_at = models.DateTimeField(
        help_text="Everyone who arrives before this is put in random order at this time."
    )
    rate_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Buyers admitted per minute. Empty: as fast as the cap below allows.",
    )
    max_active = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="At most this many admitted buyers at once (with a valid pass, or on "
        "their way). Empty: no cap.",
    )
    pass_minutes = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1)],
        help_text="How long an admitted buyer may hold and buy seats.",
    )
    paused = models.BooleanField(default=False, help_text="Admit no one until resumed.")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(enabled=False)
                | models.Q(rate_per_minute__isnull=False)
                | models.Q(max_active__isnull=False),
                name="waiting_room_rate_or_cap",
            )
        ]

    def __str__(self) -> str:
        return f"Waiting room of {self.event}"

    def clean(self) -> None:
        if self.enabled and self.rate_per_minute is None and self.max_active is None:
            raise ValidationError("Set an admission rate, a cap on active buyers, or both.")
