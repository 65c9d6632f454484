"""Opening a sale has no crash point that leaves an event on sale which the relay and the
sweep never see (inventory.inventory_load: the event is indexed, then loaded, then marked
on sale in Postgres), and it never interleaves with a change of the venue's layout.

Real Postgres, Redis and broker.
"""

import threading
import time
from decimal import Decimal

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from apps.core.redis import redis_client_get
from apps.core.tests.pipeline import outbox_relay_once
from apps.reservations import services
from apps.reservations.models import Event
from apps.reservations.redis import inventory
from apps.reservations.redis.keys import event_keys
from apps.reservations.tests.factories import EventFactory, SeatFactory, SectionFactory


def draft_event(seats: int = 2) -> Event:
    section = SectionFactory(name="A", category__price=Decimal("50.00"))
    for number in range(1, seats + 1):
        SeatFactory(section=section, row="1", number=number)
    return EventFactory(venue=section.venue, sale_status=Event.SaleStatus.DRAFT)


def event_redis_keys(event_id: int) -> set[str]:
    pattern = f"{event_keys(event_id).base}:*".replace("{", "\\{").replace("}", "\\}")
    return set(redis_client_get().scan_iter(match=pattern))


@pytest.mark.django_db
def test_an_opening_that_died_before_the_load_is_harmless_and_opens_again(monkeypatch, producer):
    event = draft_event()
    real_run = inventory._run

    def dies_loading(name: str, event_id: int, **args: object) -> dict:
        if name == "load":  # the event is in the index already; its script never runs
            raise redis.ConnectionError("the process died here")
        return real_run(name, event_id, **args)

    monkeypatch.setattr(inventory, "_run", dies_loading)
    with pytest.raises(redis.ConnectionError):
        services.event_open_sale(event=event)
    monkeypatch.setattr(inventory, "_run", real_run)

    event.refresh_from_db()
    assert event.sale_status == Event.SaleStatus.DRAFT
    # Indexed: whatever is loaded later, the relay and the sweep walk it...
    assert event.pk in inventory.inventory_event_ids()
    assert event_redis_keys(event.pk) == set(), "nothing of the event was loaded"
    # ...and, while nothing is, find nothing to do there.
    assert services.holds_expire() == 0
    assert outbox_relay_once(producer=producer) == 0
    with pytest.raises(CommandError, match="no inventory in Redis.*open the sale again"):
        call_command("reconcile", str(event.pk))
    # Its venue counts as on sale already: its seats may be loaded any moment.
    assert services.venue_layout_frozen(event.venue) is not None

    assert services.event_open_sale(event=event) == 0

    event.refresh_from_db()
    assert event.sale_status == Event.SaleStatus.ON_SALE
    services.hold_create(event_id=event.pk, holder="user:1", seats=["A-1-1"])
    assert outbox_relay_once(producer=producer) == 1, "the relay publishes the event's outbox"
    assert inventory.inventory_index_check(event_id=event.pk) == []


@pytest.mark.django_db
def test_an_opening_that_died_before_postgres_said_so_opens_again_keeping_the_state(
    monkeypatch, producer
):
    event = draft_event()

    def dies(**kwargs: object) -> None:  # after the load and the UPDATE, before the commit
        raise RuntimeError("the process died here")

    monkeypatch.setattr(services, "event_cache_forget", dies)
    with pytest.raises(RuntimeError):
        services.event_open_sale(event=event)
    monkeypatch.undo()

    event.refresh_from_db()
    assert event.sale_status == Event.SaleStatus.DRAFT  # rolled back
    assert event.pk in inventory.inventory_event_ids()
    # Redis says on sale: a hold may come in before anyone opens it again, and the relay
    # publishes its envelope.
    hold = services.hold_create(event_id=event.pk, holder="user:1", seats=["A-1-1"])
    assert outbox_relay_once(producer=producer) == 1

    assert services.event_open_sale(event=event) == hold.seq  # state and seq kept

    event.refresh_from_db()
    assert event.sale_status == Event.SaleStatus.ON_SALE
    assert inventory.inventory_snapshot(event_id=event.pk).seat_state("A-1-1") == (
        "held",
        hold.token,
    )


@pytest.mark.django_db(transaction=True)
def test_a_layout_change_and_an_opening_never_interleave():
    """The change holds the venue's row lock: the opening waits for it to commit and then
    loads the seat it added (without the lock, the sale would miss it, and the seat's
    events would be dead-lettered)."""
    event = draft_event(seats=1)
    section = event.venue.sections.get()
    checked, go_on = threading.Event(), threading.Event()
    opened: list[int] = []

    def change() -> None:
        try:
            with transaction.atomic():
                services.venue_layout_check_editable(section.venue)
                checked.set()
                go_on.wait(10)
                SeatFactory(section=section, row="1", number=2)
        finally:
            connection.close()

    def open_sale() -> None:
        try:
            opened.append(services.event_open_sale(event=Event.objects.get(pk=event.pk)))
        finally:
            connection.close()

    changing = threading.Thread(target=change)
    changing.start()
    assert checked.wait(10)
    opening = threading.Thread(target=open_sale)
    opening.start()
    time.sleep(0.5)
    assert not opened, "the opening must wait for the change to commit"
    go_on.set()
    changing.join(10)
    opening.join(30)

    assert opened == [0]
    assert sorted(redis_client_get().hkeys(event_keys(event.pk).seats)) == ["A-1-1", "A-1-2"]
    # And from now on the layout is frozen.
    with pytest.raises(services.LayoutError, match="can no longer be changed"):
        services.venue_layout_check_editable(section.venue)
