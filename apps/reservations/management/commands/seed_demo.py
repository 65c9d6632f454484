from django.core.management.base import BaseCommand

from apps.reservations.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo venue (several sections, a few thousand seats) and an on-sale event."

    def handle(self, *args: object, **options: object) -> None:
        event = demo_seed()
        seats = event.venue.seats.count()
        self.stdout.write(f"Demo event {event.pk} '{event.name}' at {event.venue}: {seats} seats.")
