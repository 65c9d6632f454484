"""Box-office admin for the catalog. Custom views delegate every write to services."""

import json
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse

from apps.core.exceptions import DomainError
from apps.reservations.forms import (
    LayoutImportForm,
    SeatBlockForm,
    SeatGridForm,
    VenueFocalForm,
    VenueLayoutForm,
    VenueLayoutInlineFormSet,
)
from apps.reservations.layouts import LayoutError, layout_parse
from apps.reservations.models import Event, PriceCategory, Seat, Section, Venue
from apps.reservations.selectors import catalog_caches_forget, venue_layout_export
from apps.reservations.services import (
    event_close_sale,
    event_open_sale,
    seats_block,
    seats_unblock,
    section_seats_generate,
    venue_layout_check_editable,
    venue_layout_frozen,
    venue_layout_import,
)
from apps.stats.selectors import event_stats_get
from apps.waitingroom.admin import WaitingRoomInline, room_admin_context, room_admin_urls
from apps.waitingroom.services import room_sync

# --- a venue's layout is frozen once an event on it has left draft --------------------
# (services.venue_layout_frozen: the seats, sections, price categories and focal point
# are in the live inventory and in every process's memos). The pages of a frozen venue's
# parts are read-only and say why; the forms check again under the venue's row lock, for
# a sale opened meanwhile (forms.py).


def _frozen(request: HttpRequest, venue_id: int | None) -> str | None:
    """venue_layout_frozen, asked once per venue and request: the admin asks the
    permissions many times per page."""
    if venue_id is None:
        return None
    memo = request.__dict__.setdefault("_venue_layout_frozen", {})
    if venue_id not in memo:
        memo[venue_id] = venue_layout_frozen(Venue.objects.get(pk=venue_id))
    return memo[venue_id]


class VenueLayoutInline(admin.TabularInline):
    """A venue's price categories or sections, on its page: read-only once frozen."""

    formset = VenueLayoutInlineFormSet
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Venue | None = None) -> bool:
        frozen = obj is not None and _frozen(request, obj.pk)
        return not frozen and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Venue | None = None) -> bool:
        frozen = obj is not None and _frozen(request, obj.pk)
        return not frozen and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Venue | None = None) -> bool:
        frozen = obj is not None and _frozen(request, obj.pk)
        return not frozen and super().has_delete_permission(request, obj)


class VenueLayoutAdmin(admin.ModelAdmin):
    """A part of a venue's layout (price category, section, seat): read-only, with the
    reason shown, once the venue is frozen."""

    form = VenueLayoutForm

    # obj: a price category, section or seat (each has venue_id).
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        frozen = obj is not None and _frozen(request, obj.venue_id)
        return not frozen and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        frozen = obj is not None and _frozen(request, obj.venue_id)
        return not frozen and super().has_delete_permission(request, obj)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        reason = obj is not None and _frozen(request, obj.venue_id)
        if reason and request.method == "GET":
            self.message_user(request, reason, messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_deleted_objects(self, objs, request: HttpRequest):  # type: ignore[no-untyped-def]
        """The bulk delete's confirmation: a frozen venue's parts cannot be deleted (their
        has_delete_permission says so), and the page says why."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        reasons = {reason for obj in objs if (reason := _frozen(request, obj.venue_id))}
        for reason in sorted(reasons):
            self.message_user(request, reason, messages.WARNING)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        self.delete_queryset(request, type(obj)._default_manager.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for venue in Venue.objects.filter(pk__in=queryset.values("venue_id")):
                try:
                    venue_layout_check_editable(venue)  # a sale opened since the page
                except LayoutError as exc:
                    raise PermissionDenied(exc.errors[0]) from None
            super().delete_queryset(request, queryset)
            catalog_caches_forget()  # deleted seats send no signal (signals.py)


class PriceCategoryInline(VenueLayoutInline):
    model = PriceCategory


class SectionInline(VenueLayoutInline):
    model = Section
    show_change_link = True


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ["name", "seat_count", "created_at"]
    search_fields = ["name"]
    inlines = [PriceCategoryInline, SectionInline]
    form = VenueFocalForm

    def get_readonly_fields(self, request: HttpRequest, obj: Venue | None = None):  # type: ignore[no-untyped-def]
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and _frozen(request, obj.pk):
            fields += ["focal_x", "focal_y"]
        return fields

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        reason = obj is not None and _frozen(request, obj.pk)
        if reason and request.method == "GET":
            self.message_user(request, f"{reason} (the name still can).", messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).annotate(seat_count=Count("seats"))

    @admin.display(ordering="seat_count", description="seats")
    def seat_count(self, venue: Venue) -> int:
        return venue.seat_count  # type: ignore[attr-defined]

    def get_urls(self):  # type: ignore[no-untyped-def]
        own = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="reservations_venue_import",
            ),
            path(
                "<int:venue_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="reservations_venue_export",
            ),
        ]
        return own + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = LayoutImportForm(request.POST or None, request.FILES or None)
        layout_errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            try:
                venue = venue_layout_import(layout=layout_parse(form.cleaned_data["file"]))
            except LayoutError as exc:
                layout_errors = exc.errors
            else:
                messages.success(request, f"Imported {venue} with {venue.seats.count()} seats.")
                return redirect("admin:reservations_venue_change", venue.pk)
        return render(
            request,
            "admin/reservations/form_page.html",
            {
                **self.admin_site.each_context(request),
                "title": "Import a venue layout",
                "intro": "Creates a new venue with its price categories, sections and seats.",
                "form": form,
                "layout_errors": layout_errors,
                "submit_label": "Import",
                "back_url": reverse("admin:reservations_venue_changelist"),
                "back_title": "Venues",
            },
        )

    def export_view(self, request: HttpRequest, venue_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        venue = get_object_or_404(Venue, pk=venue_id)
        response = HttpResponse(
            json.dumps(venue_layout_export(venue=venue), indent=1),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="venue-{venue.pk}-layout.json"'
        return response


@admin.register(PriceCategory)
class PriceCategoryAdmin(VenueLayoutAdmin):
    list_display = ["name", "venue", "price", "color"]
    list_filter = ["venue"]


@admin.register(Section)
class SectionAdmin(VenueLayoutAdmin):
    list_display = ["name", "venue", "category", "seat_count"]
    list_filter = ["venue"]
    search_fields = ["name", "venue__name"]

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        return (
            super()
            .get_queryset(request)
            .select_related("venue", "category")
            .annotate(seat_count=Count("seats"))
        )

    @admin.display(ordering="seat_count", description="seats")
    def seat_count(self, section: Section) -> int:
        return section.seat_count  # type: ignore[attr-defined]

    def get_urls(self):  # type: ignore[no-untyped-def]
        own = [
            path(
                "<int:section_id>/generate/",
                self.admin_site.admin_view(self.generate_view),
                name="reservations_section_generate",
            )
        ]
        return own + super().get_urls()

    def generate_view(self, request: HttpRequest, section_id: int) -> HttpResponse:
        section = get_object_or_404(Section.objects.select_related("venue"), pk=section_id)
        # The staff member's right to change sections; whether this venue's seats may
        # still change is the service's to say, with its reason.
        if not super().has_change_permission(request):
            return HttpResponse(status=403)
        form = SeatGridForm(request.POST or None)
        frozen = _frozen(request, section.venue_id)
        layout_errors: list[str] = [frozen] if frozen and request.method == "GET" else []
        if request.method == "POST" and form.is_valid():
            try:
                created = section_seats_generate(
                    section=section,
                    grid=form.grid(),
                    replace=form.cleaned_data["replace"],
                )
            except LayoutError as exc:
                layout_errors = exc.errors
            else:
                messages.success(request, f"Generated {created} seats in {section}.")
                return redirect("admin:reservations_section_change", section.pk)
        return render(
            request,
            "admin/reservations/form_page.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Generate seats for {section}",
                "intro": "Rows × seats per row; curved rows are arcs around the venue's focal "
                "point.",
                "form": form,
                "layout_errors": layout_errors,
                "submit_label": "Generate",
                "back_url": reverse("admin:reservations_section_change", args=[section.pk]),
                "back_title": str(section),
            },
        )


@admin.register(Seat)
class SeatAdmin(VenueLayoutAdmin):
    list_display = ["key", "section", "row", "number", "x", "y", "accessible"]
    list_filter = ["venue", "accessible"]
    search_fields = ["key"]
    list_select_related = ["section__venue"]
    raw_id_fields = ["section"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "venue", "starts_at", "sale_status", "hold_ttl_seconds"]
    list_filter = ["sale_status", "venue"]
    search_fields = ["name"]
    date_hierarchy = "starts_at"
    # The sale status changes only through the actions: they load or close the Redis
    # inventory, which an edited field would silently skip.
    readonly_fields = ["sale_status"]
    actions = ["open_sale", "close_sale"]
    inlines = [WaitingRoomInline]

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        # The room's settings reach Redis only through the service (on commit).
        room = getattr(form.instance, "waiting_room", None)
        if room is not None:
            room_sync(room)

    def get_readonly_fields(self, request: HttpRequest, obj: Event | None = None):  # type: ignore[no-untyped-def]
        # The live inventory holds the venue's seats: an event past draft keeps its venue.
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.sale_status != Event.SaleStatus.DRAFT:
            fields.append("venue")
        return fields

    @admin.action(description="Open the sale (load seats into the live inventory)")
    def open_sale(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for event in queryset.select_related("venue"):
            try:
                event_open_sale(event=event)
            except DomainError as exc:
                self.message_user(request, f"{event}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{event} is on sale.")

    @admin.action(description="Close the sale (no new holds)")
    def close_sale(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for event in queryset:
            try:
                event_close_sale(event=event)
            except DomainError as exc:
                self.message_user(request, f"{event}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"{event} is closed.")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # The box office's figures above the form (event/change_form.html), read as the
        # stats API reads them, which box_office.js then polls; None for a draft, which
        # has never been on sale. A non-numeric id is left to Django's "not found".
        if object_id.isdigit():
            extra_context = {
                **(extra_context or {}),
                "box_office": event_stats_get(event_id=int(object_id)),
                "currency": settings.SEATS_CURRENCY,
                **room_admin_context(int(object_id)),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):  # type: ignore[no-untyped-def]
        own = [
            path(
                "<int:event_id>/seats/",
                self.admin_site.admin_view(self.seats_view),
                name="reservations_event_seats",
            )
        ]
        return own + room_admin_urls(self) + super().get_urls()

    def seats_view(self, request: HttpRequest, event_id: int) -> HttpResponse:
        """Block or unblock seats: through the same scripts as buyers, never directly."""
        event = get_object_or_404(Event, pk=event_id)
        if not self.has_change_permission(request, event):
            return HttpResponse(status=403)
        form = SeatBlockForm(request.POST or None)
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            change = seats_block if form.cleaned_data["action"] == "block" else seats_unblock
            try:
                change(event=event, seats=form.cleaned_data["seats"])
            except DomainError as exc:
                errors = [exc.detail, *exc.extra.get("seats", [])]
            else:
                messages.success(request, f"Done: {form.cleaned_data['action']}.")
                return redirect("admin:reservations_event_change", event.pk)
        return render(
            request,
            "admin/reservations/form_page.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Block or unblock seats of {event}",
                "form": form,
                "layout_errors": errors,
                "submit_label": "Apply",
                "back_url": reverse("admin:reservations_event_change", args=[event.pk]),
                "back_title": str(event),
            },
        )
