"""Admin forms: they only shape input; the services decide."""

import json
from collections.abc import Iterable

from django import forms

from apps.reservations.layouts import MAX_ROWS, MAX_SEATS_PER_ROW, LayoutError, SeatGrid
from apps.reservations.models import Venue
from apps.reservations.services import venue_layout_check_editable

MAX_LAYOUT_BYTES = 20 * 1024 * 1024


class SeatGridForm(forms.Form):
    rows = forms.IntegerField(max_value=MAX_ROWS)
    seats_per_row = forms.IntegerField(max_value=MAX_SEATS_PER_ROW)
    layout = forms.ChoiceField(choices=[(v, v) for v in SeatGrid.LAYOUTS], initial="grid")
    row_labels = forms.ChoiceField(choices=[(v, v) for v in SeatGrid.ROW_LABELS], initial="numbers")
    x = forms.FloatField(initial=0, help_text="Grid/offset: x of the first seat of row 1.")
    y = forms.FloatField(initial=0, help_text="Grid/offset: y of the first seat of row 1.")
    spacing = forms.FloatField(initial=10, help_text="Distance between seats in a row.")
    row_spacing = forms.FloatField(initial=12, help_text="Distance between rows.")
    radius = forms.FloatField(
        initial=100, help_text="Curved: distance of row 1 from the venue's focal point."
    )
    angle = forms.FloatField(
        initial=90,
        help_text="Curved: direction of the section from the focal point, degrees.",
    )
    replace = forms.BooleanField(required=False, help_text="Delete the section's seats first.")

    def grid(self) -> SeatGrid:
        data = {k: v for k, v in self.cleaned_data.items() if k != "replace"}
        return SeatGrid(**data)


class LayoutImportForm(forms.Form):
    file = forms.FileField(help_text="A layout JSON file, as exported from a venue.")

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_LAYOUT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_LAYOUT_BYTES} bytes.")
        try:
            return json.loads(upload.read())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise forms.ValidationError(f"The file is not valid JSON: {exc}") from exc


class SeatBlockForm(forms.Form):
    action = forms.ChoiceField(choices=[("block", "Block"), ("unblock", "Unblock")])
    seats = forms.CharField(
        widget=forms.Textarea, help_text="Seat keys, separated by spaces, commas or new lines."
    )

    def clean_seats(self) -> list[str]:
        seats = self.cleaned_data["seats"].replace(",", " ").split()
        if not seats:
            raise forms.ValidationError("Give at least one seat key.")
        return seats


# --- a venue's layout: frozen once an event on it has left draft ----------------------
# The checks lock the venue's row for the rest of the admin's transaction (the admin saves
# a form and its inlines in one), as opening a sale does: a change either commits before
# the sale reads the seats or finds the sale open (services.venue_layout_check_editable).


def _venues_check(venues: Iterable[Venue | None]) -> None:
    errors = []
    for venue in {v for v in venues if v is not None}:
        try:
            venue_layout_check_editable(venue)
        except LayoutError as exc:
            errors.extend(exc.errors)
    if errors:
        raise forms.ValidationError(errors)


class VenueLayoutForm(forms.ModelForm):
    """A price category, section or seat: refused, with the reason, when the venue it is
    in (or is moved to) has an event past draft."""

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        venues = [cleaned.get("venue")]
        if cleaned.get("section") is not None:  # a seat
            venues.append(cleaned["section"].venue)
        if self.instance.pk is not None:
            venues.append(Venue.objects.filter(pk=self.instance.venue_id).first())
        _venues_check(venues)
        return cleaned


class VenueFocalForm(forms.ModelForm):
    """The venue itself: its name may change at any time, its focal point (best available's
    row order, loaded with the sale) only while every event on it is a draft."""

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if self.instance.pk is not None and {"focal_x", "focal_y"} & set(self.changed_data):
            _venues_check([self.instance])
        return cleaned


class VenueLayoutInlineFormSet(forms.BaseInlineFormSet):
    """The venue page's price categories and sections: any change refused once frozen."""

    def clean(self) -> None:
        super().clean()
        changed = any(form.has_changed() for form in self.forms) or self.deleted_forms
        if self.instance.pk is not None and changed:
            _venues_check([self.instance])
