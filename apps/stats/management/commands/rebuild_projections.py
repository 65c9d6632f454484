from django.core.management.base import BaseCommand

from apps.stats.rebuild import stats_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the stats projection by replaying seat-events from the beginning, then "
        "repair from Redis every event the topic lacks envelopes of. Stop the stats worker "
        "first."
    )

    def handle(self, *args: object, **options: object) -> None:
        rebuilt = stats_rebuild()
        self.stdout.write(
            f"Replayed {rebuilt.read} seat events; stats of {rebuilt.events} events rebuilt."
        )
        for event_id, repair in rebuilt.repaired.items():
            self.stdout.write(
                f"Event {event_id}: the topic lacks its envelopes up to seq {repair.seq}; "
                "stats repaired from Redis:"
            )
            for change in repair.changes or ["nothing to change"]:
                self.stdout.write(f"  {change}")
