"""The catalog: venues and their seats, and the events sold on them.

Seat *state* (free/held/reserved/blocked) is not here: it lives in Redis, owned by the
write side's Lua scripts. These tables say what exists, not who has it.
"""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Venue(models.Model):
    name = models.CharField(max_length=200, unique=True)
    # The point "best available" seats are closest to (e.g. stage centre), in the same
    # coordinate space as the seats' x/y.
    focal_x = models.FloatField(default=0.0)
    focal_y = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PriceCategory(models.Model):
    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="price_categories")
    name = models.CharField(max_length=100)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    color = models.CharField(max_length=7, default="#4a90d9", help_text="Hex colour on the map.")

    class Meta:
        ordering = ["venue", "-price", "name"]
        verbose_name_plural = "price categories"
        constraints = [
            models.UniqueConstraint(fields=["venue", "name"], name="uniq_category_name_per_venue"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="category_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.price})"


class Section(models.Model):
    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="sections")
    name = models.CharField(max_length=50, help_text="Short name; the first part of seat keys.")
    category = models.ForeignKey(PriceCategory, on_delete=models.PROTECT, related_name="sections")

    class Meta:
        ordering = ["venue", "name"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "name"], name="uniq_section_name_per_venue"),
        ]

    def __str__(self) -> str:
        return f"{self.venue} / {self.name}"


class Seat(models.Model):
    # Denormalised from section.venue so the database itself enforces one key per venue.
    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="seats")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="seats")
    row = models.CharField(max_length=10)
    number = models.PositiveIntegerField()
    # Stable identity used by the API, Redis and events, e.g. "A-3-12".
    key = models.CharField(max_length=40)
    x = models.FloatField()
    y = models.FloatField()
    accessible = models.BooleanField(default=False)

    class Meta:
        ordering = ["section", "row", "number"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "key"], name="uniq_seat_key_per_venue"),
            models.UniqueConstraint(
                fields=["section", "row", "number"],
                name="uniq_seat_position_per_section",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    class SaleStatus(models.TextChoices):
        DRAFT = "draft", "Draft"
        ON_SALE = "on_sale", "On sale"
        CLOSED = "closed", "Closed"

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="events")
    name = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    sale_status = models.CharField(
        max_length=10, choices=SaleStatus.choices, default=SaleStatus.DRAFT
    )
    hold_ttl_seconds = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(10)],
        help_text="How long a hold lasts before its seats are free again.",
    )
    max_seats_per_hold = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1)],
        help_text="Most seats one buyer may hold at once.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(hold_ttl_seconds__gte=10),
                name="event_hold_ttl_gte_10",
            ),
            models.CheckConstraint(
                condition=models.Q(max_seats_per_hold__gte=1),
                name="event_max_seats_gte_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.starts_at:%Y-%m-%d})"
