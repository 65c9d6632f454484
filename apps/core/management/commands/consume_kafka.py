"""``manage.py consume_kafka <name>``: run one registered Kafka worker until SIGTERM/SIGINT
(docs/architecture.md, Consumers)."""

import threading

from django.core.management.base import BaseCommand, CommandError

from apps.core.loop import stop_on_signals
from apps.core.metrics import metrics_port, metrics_server_start
from apps.core.workers import worker_class_get, workers_registered


class Command(BaseCommand):
    help = (
        "Run one Kafka worker (e.g. persistence, stats, gateway) in its consumer group. "
        "SIGTERM or Ctrl-C finishes the batch in hand, commits it and exits; a second one "
        "exits at once."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("name", nargs="?", help="the worker's registered name")
        parser.add_argument(
            "--list", action="store_true", dest="list_only", help="list the workers and exit"
        )

    def handle(self, *args: object, name: str | None, list_only: bool, **options: object) -> None:
        if list_only or not name:
            for registered, cls in sorted(workers_registered().items()):
                self.stdout.write(f"{registered}\t{', '.join(cls.topic_settings)}")
            if not list_only:
                raise CommandError("name a worker to run (see above)")
            return
        try:
            worker = worker_class_get(name)()
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        stop = threading.Event()
        with stop_on_signals(stop, f"worker {name}"):
            metrics_server_start(metrics_port())  # SEATS_METRICS_PORT (docs/architecture.md)
            worker.run(stop)
