import signal
import threading
from types import FrameType

from django.core.management.base import BaseCommand

from apps.core.metrics import metrics_port, metrics_server_start
from apps.reservations.relay import outbox_relay_run


class Command(BaseCommand):
    help = (
        "Publish every event's Redis outbox to Kafka until SIGTERM or SIGINT. Several copies "
        "may run; each event is published by one of them at a time."
    )

    def handle(self, *args: object, **options: object) -> None:
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            # Only flag it: the relay finishes the batch in flight (its acknowledgements and
            # trim), then hands its leases back so another relay takes over at once.
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        metrics_server_start(metrics_port())  # SEATS_METRICS_PORT (docs/architecture.md)
        outbox_relay_run(stop=stop)
