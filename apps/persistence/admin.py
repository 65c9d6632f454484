"""Box-office view of the recorded reservations: search, filter, export, cancel.

Read-only: the rows are a projection of the event stream. "Cancel" asks the write side
(Redis) to free the seats; the row turns cancelled when the resulting seat.released comes
back through the persistence consumer.
"""

import csv

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.core.exceptions import DomainError
from apps.persistence.models import Reservation, ReservedSeat
from apps.reservations.services import reservation_cancel

CSV_COLUMNS = [
    "reservation_id",
    "event_id",
    "event",
    "holder",
    "status",
    "seats",
    "total",
    "created_at",
    "cancelled_at",
]


def _csv_cell(value: object) -> str:
    """Text a spreadsheet shows as text: a leading = + - @ would make it a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class ReservedSeatInline(admin.TabularInline):
    model = ReservedSeat
    readonly_fields = ("seat_key", "price", "active")
    fields = readonly_fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "holder",
        "status",
        "seat_list",
        "total",
        "created_at",
        "cancelled_at",
    ]
    list_filter = ["status", ("event", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "holder", "seats__seat_key"]
    list_select_related = ["event"]
    date_hierarchy = "created_at"
    inlines = [ReservedSeatInline]
    actions = ["export_csv", "cancel_reservations"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Reservation]:
        seats = ReservedSeat.objects.order_by("seat_key")
        return super().get_queryset(request).prefetch_related(Prefetch("seats", queryset=seats))

    @admin.display(description="seats")
    def seat_list(self, reservation: Reservation) -> str:
        return ", ".join(seat.seat_key for seat in reservation.seats.all())

    # A projection: rows change only through the event stream, never by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("persistence.cancel_reservation")

    @admin.action(description="Export selected reservations as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="reservations.csv"'
        writer = csv.writer(response)
        writer.writerow(CSV_COLUMNS)
        for r in queryset.select_related("event").order_by("created_at", "id"):
            seats = " ".join(seat.seat_key for seat in r.seats.all())
            row = [r.id, r.event_id, r.event, r.holder, r.status, seats, r.total]
            row += [r.created_at.isoformat(), r.cancelled_at.isoformat() if r.cancelled_at else ""]
            writer.writerow([_csv_cell(value) for value in row])
        return response

    @admin.action(
        description="Cancel selected reservations (frees their seats)", permissions=["cancel"]
    )
    def cancel_reservations(
        self, request: HttpRequest, queryset: QuerySet[Reservation]
    ) -> TemplateResponse | None:
        reservations = list(queryset.select_related("event"))
        # Freeing sold seats cannot be undone: the first post only asks for confirmation,
        # like Django's own delete action.
        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "admin/persistence/reservation/cancel_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Cancel reservations?",
                    "opts": self.model._meta,
                    "reservations": reservations,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        sent = 0
        for reservation in reservations:
            if reservation.status == Reservation.Status.CANCELLED:
                self.message_user(
                    request, f"{reservation.id} is already cancelled.", messages.WARNING
                )
                continue
            try:
                reservation_cancel(
                    event_id=reservation.event_id, reservation_id=str(reservation.id)
                )
            except DomainError as exc:
                self.message_user(request, f"{reservation.id}: {exc.detail}", messages.ERROR)
            else:
                sent += 1
        if sent:
            self.message_user(
                request,
                f"Cancelled {sent} reservation(s); their seats are free again. The list shows "
                "them as cancelled once the event is recorded, usually within a second.",
            )
        return None
