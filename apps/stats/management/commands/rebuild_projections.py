from django.core.management.base import BaseCommand

from apps.stats.rebuild import stats_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the stats projection by replaying seat-events from the beginning. "
        "Stop the stats worker first."
    )

    def handle(self, *args: object, **options: object) -> None:
        read, events = stats_rebuild()
        self.stdout.write(f"Replayed {read} seat events; stats of {events} events rebuilt.")
