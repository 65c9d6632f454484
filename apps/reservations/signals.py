"""Keep the cached public events (selectors.event_public_get) true to the catalog."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.reservations.models import Event, Venue
from apps.reservations.selectors import event_cache_forget


@receiver([post_save, post_delete], sender=Event)
def event_changed(sender: type, instance: Event, **kwargs: Any) -> None:
    event_cache_forget(event_id=instance.pk)


@receiver(post_save, sender=Venue)
def venue_changed(sender: type, instance: Venue, **kwargs: Any) -> None:
    # An event's answer carries its venue's name.
    for event_id in instance.events.values_list("pk", flat=True):
        event_cache_forget(event_id=event_id)
