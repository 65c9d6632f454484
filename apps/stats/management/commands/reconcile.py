"""``manage.py reconcile <event>``: the read side checks itself against the write side.

It lives with the stats projection because it reads every projection (the stats, the
reservation rows) and compares them with Redis (apps/stats/reconcile.py); the write side
knows nothing of its readers.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.reservations.errors import SaleNotOpen
from apps.reservations.models import Event
from apps.reservations.selectors import event_index_problems
from apps.stats.reconcile import event_reconcile


class Command(BaseCommand):
    help = (
        "Compare an event's seat states in Redis with best available's row index, its "
        "reservation rows and its stats; print every difference and exit non-zero if "
        "there is any."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("event_id", type=int)

    def handle(self, *args: object, event_id: int, **options: object) -> None:
        if not Event.objects.filter(pk=event_id).exists():
            raise CommandError(f"no event {event_id}")
        try:
            problems = event_index_problems(event_id=event_id) + event_reconcile(event_id=event_id)
        except SaleNotOpen:
            # Never opened, or an opening that died after indexing the event and before
            # loading it (inventory.inventory_load): nothing there to compare yet.
            raise CommandError(
                f"event {event_id} has no inventory in Redis: its sale never opened, or "
                "its opening did not finish (open the sale again)"
            ) from None
        for problem in problems:
            self.stdout.write(problem)
        if problems:
            raise CommandError(f"event {event_id}: {len(problems)} differences")
        self.stdout.write(f"OK: event {event_id} is consistent")
