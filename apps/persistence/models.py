"""Reservations as recorded from the event stream (the ``persistence`` consumer).

These rows are a projection: the write side (Redis) decides, ``seat.reserved`` and
``seat.released`` (reason ``cancelled``) carry the decision here. Nothing else writes them,
except the repair from Redis' state when those envelopes are lost for good
(services.reservations_repair; docs/architecture.md, Repair).
"""

from django.db import models

from apps.reservations.models import Event


class Reservation(models.Model):
    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        CANCELLED = "cancelled", "Cancelled"

    # The reservation id the write side chose; the buyer and the events know it by this.
    id = models.UUIDField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="reservations")
    holder = models.CharField(max_length=100, db_index=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField(help_text="When the write side reserved the seats.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The event's seq after the seat.reserved that created this row.
    seq = models.BigIntegerField()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("cancel_reservation", "Can cancel reservations (frees their seats)")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(total__gte=0), name="reservation_total_gte_0"
            ),
            # A cancelled reservation says when; a live one cannot have been cancelled.
            models.CheckConstraint(
                condition=models.Q(status="reserved", cancelled_at__isnull=True)
                | models.Q(status="cancelled", cancelled_at__isnull=False),
                name="reservation_cancelled_at_iff_cancelled",
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)


class ReservedSeat(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="seats")
    # Denormalised from reservation.event so the database can refuse a double sale itself.
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+")
    seat_key = models.CharField(max_length=40)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    # False once the reservation is cancelled: the seat may be sold again, and this row stays
    # as the record of the earlier sale.
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["reservation", "seat_key"]
        constraints = [
            # One live sale per seat per event, whatever bug or replay sends a second one.
            models.UniqueConstraint(
                fields=["event", "seat_key"],
                condition=models.Q(active=True),
                name="uniq_active_seat_per_event",
            ),
            models.UniqueConstraint(
                fields=["reservation", "seat_key"], name="uniq_seat_per_reservation"
            ),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="reserved_price_gte_0"),
        ]

    def __str__(self) -> str:
        return self.seat_key
