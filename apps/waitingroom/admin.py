"""The waiting room in the event's admin page: its settings inline, its live figures and
pause / resume / rate in the box office (apps/reservations/admin.py wires them in)."""

from django.contrib import admin, messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import URLPattern, path

from apps.waitingroom.models import WaitingRoom
from apps.waitingroom.selectors import room_figures
from apps.waitingroom.services import room_update


class WaitingRoomInline(admin.StackedInline):
    model = WaitingRoom
    can_delete = False
    extra = 0
    max_num = 1
    fields = [
        "enabled",
        "sale_starts_at",
        "rate_per_minute",
        "max_active",
        "pass_minutes",
        "paused",
    ]


def room_admin_context(event_id: int) -> dict:
    """The room's settings and figures for the box office (None if the event has none)."""
    room = WaitingRoom.objects.filter(event_id=event_id).first()
    return {"waiting_room": room, "room_figures": room_figures(event_id=event_id) if room else None}


def room_admin_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    def control(request: HttpRequest, event_id: int) -> HttpResponse:
        """Pause, resume or change the rate during the sale (POST from the box office)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        room = get_object_or_404(WaitingRoom, event_id=event_id)
        if not model_admin.has_change_permission(request, room.event):
            return HttpResponse(status=403)
        action = request.POST.get("action")
        try:
            if action == "pause":
                room_update(room, paused=True)
            elif action == "resume":
                room_update(room, paused=False)
            elif action == "rate":
                raw = request.POST.get("rate_per_minute", "").strip()
                room_update(room, rate_per_minute=int(raw) if raw else None)
            else:
                return HttpResponse(status=400)
        except (ValidationError, ValueError) as exc:
            detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            messages.error(request, f"The waiting room was not changed: {detail}")
        else:
            messages.success(request, "The waiting room is updated.")
        return redirect("admin:reservations_event_change", event_id)

    return [
        path(
            "<int:event_id>/room/",
            model_admin.admin_site.admin_view(control),
            name="reservations_event_room",
        )
    ]
