"""The ``persistence`` Kafka consumer: seat events → Reservation rows. Thin: route, call."""

from apps.core.consumers import Envelope, KafkaBatchConsumer, consumer_register
from apps.persistence.services import reservation_cancel_record, reservation_record


@consumer_register
class PersistenceConsumer(KafkaBatchConsumer):
    name = "persistence"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)

    def consume_batch(self, messages: list[Envelope]) -> None:
        for envelope in messages:
            if envelope.type == "seat.reserved":
                reservation_record(envelope=envelope)
            elif envelope.type == "seat.released" and envelope.data.get("reason") == "cancelled":
                reservation_cancel_record(envelope=envelope)
            # Holds, expiries, blocks: not reservations; the cursor still moves past them.
