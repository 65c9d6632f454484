"""``manage.py relay_outbox``: publish every event's Redis outbox to Kafka until SIGTERM/SIGINT
(docs/architecture.md, Events on Kafka)."""

import threading

from django.core.management.base import BaseCommand

from apps.core.loop import stop_on_signals
from apps.core.metrics import metrics_port, metrics_server_start
from apps.reservations.relay import outbox_relay_run


class Command(BaseCommand):
    help = (
        "Publish every event's Redis outbox to Kafka until SIGTERM or SIGINT. Several copies "
        "may run; each event is published by one of them at a time. The first signal "
        "finishes the batch in flight and hands the leases back; a second one exits at once."
    )

    def handle(self, *args: object, **options: object) -> None:
        stop = threading.Event()
        with stop_on_signals(stop, "outbox relay"):
            metrics_server_start(metrics_port())  # SEATS_METRICS_PORT (docs/architecture.md)
            outbox_relay_run(stop=stop)
