"""Keep what is cached about the catalog true to it: the public events
(selectors.event_public_get, in Redis, so for every process) and this process's memos of
venues (selectors.catalog_caches_forget; docs/architecture.md, "Changing a venue")."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.reservations.models import Event, PriceCategory, Seat, Section, Venue
from apps.reservations.selectors import catalog_caches_forget, event_cache_forget


@receiver([post_save, post_delete], sender=Event)
def event_changed(sender: type, instance: Event, **kwargs: Any) -> None:
    event_cache_forget(event_id=instance.pk)
    # The memos are per event: an event moved to another venue reads another layout.
    catalog_caches_forget()


@receiver(post_save, sender=Venue)
def venue_changed(sender: type, instance: Venue, **kwargs: Any) -> None:
    # An event's answer carries its venue's name.
    for event_id in instance.events.values_list("pk", flat=True):
        event_cache_forget(event_id=event_id)
    catalog_caches_forget()


# Not Seat's post_delete: a receiver there would make Django fetch and signal every seat
# of a deleted section or venue, one by one, instead of one DELETE. Seats go with their
# section or venue (whose post_delete is here), through services (which forget), or one
# at a time in the admin (which forgets).
@receiver([post_save, post_delete], sender=Section)
@receiver([post_save, post_delete], sender=PriceCategory)
@receiver(post_delete, sender=Venue)
@receiver(post_save, sender=Seat)
def layout_changed(sender: type, **kwargs: Any) -> None:
    catalog_caches_forget()
