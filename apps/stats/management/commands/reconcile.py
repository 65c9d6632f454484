"""``manage.py reconcile <event> [--repair]``: the read side checks itself against the write
side, and with ``--repair`` brings its projections back in line with it.

It lives with the stats projection because it reads every projection (the stats, the
reservation rows) and compares them with Redis (apps/stats/reconcile.py); the write side
knows nothing of its readers.
"""

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from apps.reservations.errors import SaleNotOpen
from apps.reservations.models import Event
from apps.reservations.selectors import event_index_problems
from apps.stats.reconcile import event_reconcile, projections_repair


class Command(BaseCommand):
    help = (
        "Compare an event's seat states in Redis with best available's row index, its "
        "reservation rows and its stats; print every difference and exit non-zero if "
        "there is any. With --repair, bring the reservation rows and the stats in line "
        "with Redis first and exit non-zero only if differences remain."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("event_id", type=int)
        parser.add_argument(
            "--repair",
            action="store_true",
            help="rewrite the event's reservation rows and stats from Redis' state when "
            "they differ (safe while the workers run), then check again",
        )

    def handle(self, *args: object, event_id: int, repair: bool, **options: object) -> None:
        if not Event.objects.filter(pk=event_id).exists():
            raise CommandError(f"no event {event_id}")
        index, projections = self._check(event_id)
        for problem in index + projections:
            self.stdout.write(problem)
        repaired = repair and bool(projections)
        if repaired:
            self._repair(event_id)
            index, projections = self._check(event_id)
            for problem in index + projections:
                self.stdout.write(f"left after the repair: {problem}")
        if repair and index:
            self.stdout.write(
                "row index: not repaired by --repair; opening the sale again rebuilds it"
            )
        problems = len(index) + len(projections)
        if problems:
            raise CommandError(f"event {event_id}: {problems} differences")
        done = " after the repair" if repaired else ""
        self.stdout.write(f"OK: event {event_id} is consistent{done}")

    def _check(self, event_id: int) -> tuple[list[str], list[str]]:
        """(row index differences, projection differences)."""
        try:
            return event_index_problems(event_id=event_id), event_reconcile(event_id=event_id)
        except SaleNotOpen:
            # Never opened, or an opening that died after indexing the event and before
            # loading it (inventory.inventory_load): nothing there to compare yet.
            raise CommandError(
                f"event {event_id} has no inventory in Redis: its sale never opened, or "
                "its opening did not finish (open the sale again)"
            ) from None

    def _repair(self, event_id: int) -> None:
        for name, result in projections_repair(event_id=event_id):
            self.stdout.write(f"repaired {name} at seq {result.seq}:")
            for change in result.changes or ["nothing to change"]:
                self.stdout.write(f"  {change}")
