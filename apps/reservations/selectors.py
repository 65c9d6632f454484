"""Read selectors of the catalog."""

from django.db.models import QuerySet

from apps.reservations.layouts import LAYOUT_FORMAT
from apps.reservations.models import Event, Venue


def event_list() -> QuerySet[Event]:
    return Event.objects.select_related("venue").exclude(sale_status=Event.SaleStatus.DRAFT)


def venue_layout_export(*, venue: Venue) -> dict:
    """The venue in the JSON layout format, which venue_layout_import reads back."""
    return {
        "format": LAYOUT_FORMAT,
        "venue": {
            "name": venue.name,
            "focal_point": {"x": venue.focal_x, "y": venue.focal_y},
        },
        "categories": [
            {"name": c.name, "price": str(c.price), "color": c.color}
            for c in venue.price_categories.all()
        ],
        "sections": [
            {"name": s.name, "category": s.category.name}
            for s in venue.sections.select_related("category")
        ],
        "seats": [
            {
                "key": s.key,
                "section": s.section.name,
                "row": s.row,
                "number": s.number,
                "x": s.x,
                "y": s.y,
                "accessible": s.accessible,
            }
            for s in venue.seats.select_related("section").order_by("id")
        ],
    }
