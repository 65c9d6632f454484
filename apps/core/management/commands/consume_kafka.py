"""``manage.py consume_kafka <name>``: run one registered Kafka consumer until SIGTERM/SIGINT."""

import logging
import signal
import threading
from types import FrameType

from django.core.management.base import BaseCommand, CommandError

from apps.core.consumers import consumer_class_get, consumers_registered
from apps.core.metrics import metrics_port, metrics_server_start

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run one Kafka consumer (e.g. persistence, stats, gateway) in its consumer group. "
        "SIGTERM or Ctrl-C finishes the batch in hand, commits it and exits; a second one "
        "exits at once."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("name", nargs="?", help="the consumer's registered name")
        parser.add_argument(
            "--list", action="store_true", dest="list_only", help="list the consumers and exit"
        )

    def handle(self, *args: object, name: str | None, list_only: bool, **options: object) -> None:
        if list_only or not name:
            for registered, cls in sorted(consumers_registered().items()):
                self.stdout.write(f"{registered}\t{', '.join(cls.topic_settings)}")
            if not list_only:
                raise CommandError("name a consumer to run (see above)")
            return
        try:
            consumer = consumer_class_get(name)()
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        stop = threading.Event()
        previous = {}

        def stop_requested(signum: int, frame: FrameType | None) -> None:
            log.info(
                "consumer %s: %s received, stopping after the current batch",
                name,
                signal.Signals(signum).name,
            )
            stop.set()
            # A second signal gets the usual behaviour: an impatient operator can still kill.
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, stop_requested)
        metrics_server_start(metrics_port())  # SEATS_METRICS_PORT (docs/architecture.md)
        try:
            consumer.run(stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
