"""The outbox relay against the real Redis, Postgres and a real Kafka-compatible broker.

Outbox entries are written here the way the inventory scripts write them (XADD of ``seq`` and
``envelope`` to the event's outbox, the event id in the index), so these tests pin the relay's
contract without depending on the scripts. The contract: every entry reaches the topic in
seq order, at least once (a copy sent again is what a projection skips: ``applied``), and an
entry leaves the outbox only once every projection has applied it.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from kafka import KafkaAdminClient
from kafka.consumer.fetcher import ConsumerRecord

from apps.core import kafka as kafka_module
from apps.core.envelopes import Envelope
from apps.core.models import ProjectionCursor
from apps.core.projections import ProjectionWorker, Repair
from apps.core.redis import redis_client_get
from apps.core.tests.brokers import TansuBroker
from apps.core.tests.pipeline import RelayThread, outbox_relay_once, topic_records, wait_until
from apps.reservations import relay as relay_module
from apps.reservations.lease import Leases
from apps.reservations.redis.keys import event_keys, events_index_key
from apps.reservations.relay import Sent, outbox_trim
from tests.stack import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


# --- helpers -----------------------------------------------------------------------------


def outbox_append(event_id: int, seq: int) -> dict:
    """Append one domain event as the inventory scripts do; returns its envelope."""
    now = datetime.now(tz=UTC)
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "seat.held",
        "event_id": event_id,
        "seq": seq,
        "occurred_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {
            "seats": [f"A-3-{seq}"],
            "hold_token": uuid.uuid4().hex,
            "expires_at": (now + timedelta(minutes=5)).isoformat(timespec="milliseconds"),
        },
    }
    client = redis_client_get()
    client.sadd(events_index_key(), event_id)
    client.xadd(event_keys(event_id).outbox, {"seq": seq, "envelope": json.dumps(envelope)})
    return envelope


def outbox_len(event_id: int) -> int:
    return redis_client_get().xlen(event_keys(event_id).outbox)


def topic_read() -> dict[int, list[dict]]:
    """Every message on the test's topic, as envelopes grouped by key, in partition order."""
    return by_event(topic_records(settings.KAFKA_TOPIC_SEAT_EVENTS))


def applied(received: dict[int, list[dict]]) -> dict[int, list[dict]]:
    """What a projection applies of ``received``: each event's envelopes whose seq is the
    next one, copies sent again skipped."""
    result: dict[int, list[dict]] = {}
    for event_id, envelopes in received.items():
        kept = result.setdefault(event_id, [])
        for envelope in envelopes:
            if envelope["seq"] == len(kept) + 1:
                kept.append(envelope)
    return result


def topic_has(written: dict[int, list[dict]]) -> bool:
    try:
        return applied(topic_read()) == written
    except AssertionError:  # the topic does not exist (yet)
        return False


def trim_once(sent: dict[int, Sent]) -> int:
    """One trim of the relay's (``outbox_trim``) over every event, as a relay with the
    positions ``sent`` would; how many entries it dropped."""
    leases = Leases()
    leases.refresh(force=True)
    try:
        return outbox_trim(leases=leases, sent=sent)
    finally:
        leases.release()


def projections_at(event_id: int, **cursors: int) -> None:
    """The projections' cursors of ``event_id`` (``persistence=3, stats=2``)."""
    for name, seq in cursors.items():
        ProjectionCursor.objects.update_or_create(
            consumer=name, event_id=event_id, defaults={"last_seq": seq}
        )


def by_event(records: list[ConsumerRecord]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for record in records:
        envelope = json.loads(record.value)
        assert record.key == str(envelope["event_id"]).encode()
        grouped.setdefault(int(record.key), []).append(envelope)
    return grouped


def topic_exists() -> bool:
    admin = KafkaAdminClient(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS)
    try:
        return settings.KAFKA_TOPIC_SEAT_EVENTS in admin.list_topics()
    finally:
        admin.close()


class TcpProxy:
    """Forwards a port to the broker; cut() is a network outage that leaves the broker intact."""

    def __init__(self, *, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen()
        with self.lock:
            self.sockets.append(server)
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            # shutdown first: it wakes the threads blocked in accept() or recv() on it.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_broker(settings) -> Iterator[TcpProxy]:
    """A broker reached (bootstrap and advertised address alike) only through a proxy."""
    proxy_port = free_port()
    broker = TansuBroker(advertised_port=proxy_port)
    broker.start()
    proxy = TcpProxy(port=proxy_port, target_port=broker.port)
    proxy.start()
    settings.KAFKA_BOOTSTRAP_SERVERS = [f"127.0.0.1:{proxy_port}"]
    try:
        yield proxy
    finally:
        proxy.cut()
        broker.stop()


# --- tests -------------------------------------------------------------------------------


def test_entries_of_each_event_arrive_once_in_seq_order_and_stay_until_applied(producer):
    written: dict[int, list[dict]] = {41: [], 42: []}
    for seq in range(1, 6):
        written[41].append(outbox_append(41, seq))
        if seq <= 3:
            written[42].append(outbox_append(42, seq))

    assert outbox_relay_once(producer=producer) == 8
    assert outbox_relay_once(producer=producer) == 0  # remembered: nothing sent twice

    received = topic_read()
    assert received == written  # every envelope, unchanged, once, in seq order, keyed by event
    client = redis_client_get()
    assert not client.exists(event_keys(41).relay_lease, event_keys(42).relay_lease)
    # Acknowledged is not enough to forget: no projection has applied anything yet.
    assert outbox_len(41) == 5 and outbox_len(42) == 3


@pytest.mark.django_db
def test_an_entry_leaves_the_outbox_once_every_projection_applied_it(producer):
    for seq in range(1, 6):
        outbox_append(41, seq)
        outbox_append(42, seq)
    sent: dict[int, Sent] = {}
    outbox_relay_once(producer=producer, sent=sent)
    projections_at(41, persistence=5, stats=3)
    projections_at(42, persistence=4)  # stats has not applied anything of 42

    assert trim_once(sent) == 3

    kept = [int(f["seq"]) for _, f in redis_client_get().xrange(event_keys(41).outbox)]
    assert kept == [4, 5]  # stats still needs them
    assert outbox_len(42) == 5


@pytest.mark.django_db
def test_past_its_cap_an_outbox_drops_the_oldest_published_entries_only(producer, settings):
    settings.SEATS_OUTBOX_KEEP_MAX = 3
    for seq in range(1, 6):
        outbox_append(43, seq)
    sent: dict[int, Sent] = {}
    outbox_relay_once(producer=producer, sent=sent)
    for seq in range(6, 9):
        outbox_append(43, seq)  # not published yet

    assert trim_once(sent) == 5

    # Eight kept, three allowed: only the five on the broker could go.
    kept = [int(f["seq"]) for _, f in redis_client_get().xrange(event_keys(43).outbox)]
    assert kept == [6, 7, 8]


@pytest.mark.django_db
def test_nothing_is_lost_while_the_broker_is_down(own_broker, monkeypatch, caplog):
    # Started once and stopped: the port is known to be the broker's, and nothing answers it.
    own_broker.start()
    own_broker.stop()
    # Connecting gives up after 0.5 s instead of 5 s, so the failures below come quickly.
    monkeypatch.setattr(kafka_module, "BOOTSTRAP_TIMEOUT_MS", 500)
    written = {7: [outbox_append(7, seq) for seq in range(1, 5)], 8: [outbox_append(8, 1)]}

    def outbox_ids() -> list[str]:
        client = redis_client_get()
        return [i for e in (7, 8) for i, _ in client.xrange(event_keys(e).outbox)]

    before = outbox_ids()
    with RelayThread():
        wait_until(
            lambda: caplog.text.count("retrying in") >= 2,
            timeout=15,
            what="the relay to fail, back off and fail again",
        )
        assert outbox_ids() == before  # nothing dropped, nothing rewritten

        own_broker.start()  # same port, empty (in-memory) broker
        written[7] += [outbox_append(7, seq) for seq in range(5, 8)]
        written[8] += [outbox_append(8, seq) for seq in range(2, 4)]
        wait_until(lambda: topic_has(written), timeout=15, what="everything on the topic")

    assert outbox_len(7) == 7 and outbox_len(8) == 3  # no projection applied any


@pytest.mark.django_db
def test_a_broker_unreachable_mid_run_delays_entries_but_loses_none(proxied_broker, caplog):
    # Sends give up after 1.5 s instead of 30 s, so the outage below outlasts them.
    with RelayThread(delivery_timeout_ms=1500, request_timeout_ms=1000):
        written = {5: [outbox_append(5, 1)]}
        wait_until(lambda: topic_has(written), timeout=15, what="the first entry published")

        failures = caplog.text.count("retrying in")
        proxied_broker.cut()  # the producer's connection drops; reconnects are refused
        written[5] += [outbox_append(5, seq) for seq in range(2, 6)]
        wait_until(
            lambda: caplog.text.count("retrying in") > failures,
            timeout=10,
            what="the sends to fail",
        )

        proxied_broker.start()
        written[5] += [outbox_append(5, seq) for seq in range(6, 8)]
        # The broker kept its log: the whole history, in seq order (a failed send's records
        # are sent again, so copies may follow; a projection skips them).
        wait_until(lambda: topic_has(written), timeout=15, what="everything on the topic")


@pytest.mark.django_db
def test_what_a_broker_lost_is_published_again_from_the_outbox(own_broker, monkeypatch):
    # Tansu in memory forgets its topics on restart yet acknowledges sends to them: the relay
    # must notice, re-create the topic and publish again what no projection has applied.
    monkeypatch.setattr(relay_module, "TOPIC_CHECK_S", 0.5)
    own_broker.start()
    with RelayThread():
        written = {6: [outbox_append(6, 1)]}
        wait_until(lambda: topic_has(written), timeout=15, what="the first entry published")

        own_broker.stop()
        own_broker.start()
        wait_until(topic_exists, timeout=15, what="the topic to be created again")
        written[6] += [outbox_append(6, seq) for seq in range(2, 5)]
        # Entry 1 was acknowledged by the broker that forgot it: it is on the new log too.
        wait_until(lambda: topic_has(written), timeout=15, what="the whole history again")


def test_a_log_that_went_back_is_a_loss_whenever_the_relay_looks_next(own_broker, settings):
    # The relay looks at the log when it makes a producer (at start, and after any failed
    # send, which may be the broker restarting empty) and every TOPIC_CHECK_S: compared with
    # the last look, not with a fresh baseline, a restart between two looks is seen.
    own_broker.start()
    topic = settings.KAFKA_TOPIC_SEAT_EVENTS
    kafka_module.topics_ensure([topic])
    producer = kafka_module.kafka_producer_create()
    for _ in range(3):
        producer.send(topic, key=9, value=b"{}").get(timeout=30)
    producer.close(timeout=5)
    watch, leases = relay_module.LogWatch(), Leases()
    epoch = redis_client_get().get(kafka_module.log_epoch_key())
    try:
        assert not relay_module._log_lost(watch, topic, leases)  # the first look: a baseline
        assert not relay_module._log_lost(watch, topic, leases)  # nothing changed

        own_broker.stop()
        own_broker.start()  # same port, empty

        assert relay_module._log_lost(watch, topic, leases)
        assert redis_client_get().get(kafka_module.log_epoch_key()) != epoch  # workers re-read
        assert not relay_module._log_lost(watch, topic, leases)  # the new log is the baseline
    finally:
        watch.close()


@pytest.mark.django_db
def test_an_event_leased_by_another_relay_is_left_to_it(producer):
    others = [outbox_append(1, seq) for seq in (1, 2)]
    mine = [outbox_append(2, seq) for seq in (1, 2, 3)]
    client = redis_client_get()
    client.set(event_keys(1).relay_lease, "relay-elsewhere", px=3000)

    assert outbox_relay_once(producer=producer) == 3

    assert client.get(event_keys(1).relay_lease) == "relay-elsewhere"  # neither renewed nor freed
    assert topic_read() == {2: mine}

    # The other relay died: once its lease expires, this relay takes the event over.
    wait_until(lambda: not client.exists(event_keys(1).relay_lease), timeout=6, what="expiry")
    assert outbox_relay_once(producer=producer) == 2
    assert topic_read() == {1: others, 2: mine}


@pytest.mark.django_db
def test_concurrent_relays_publish_each_entry_once():
    written: dict[int, list[dict]] = {e: [] for e in range(1, 7)}
    with RelayThread(), RelayThread():
        for seq in range(1, 21):
            for event_id in written:
                written[event_id].append(outbox_append(event_id, seq))
            time.sleep(0.01)
        wait_until(lambda: topic_has(written), timeout=15, what="everything on the topic")

    # Without the lease both relays would read every stream from its start: each entry twice.
    assert topic_read() == written


class Recording(ProjectionWorker):
    """A projection that keeps what the projection framework hands it to apply."""

    name = "test-relay-copies"
    topic_settings = ("KAFKA_TOPIC_SEAT_EVENTS",)

    def __init__(self) -> None:
        super().__init__(group_id="unused")  # fed its records directly: never joins a group
        self.applied: list[Envelope] = []

    def batch_apply(self, envelopes: list[Envelope]) -> None:
        self.applied += envelopes

    def event_repair(self, event_id: int) -> Repair:
        raise AssertionError("nothing is lost here: no repair")


@pytest.mark.django_db(transaction=True)  # batch_process commits its transaction
def test_a_restarted_relay_publishes_everything_kept_again_and_projections_skip_the_copies(
    producer,
):
    written = {3: [outbox_append(3, seq) for seq in range(1, 5)], 4: [outbox_append(4, 1)]}
    assert outbox_relay_once(producer=producer, sent={}) == 5
    # A relay killed after the acknowledgements: the next one knows nothing of them.
    assert outbox_relay_once(producer=producer, sent={}) == 5

    records = topic_records(settings.KAFKA_TOPIC_SEAT_EVENTS)
    received = by_event(records)
    for event_id, envelopes in written.items():
        # The restarted relay sends the same entries again, identical and in the same order...
        assert received[event_id] == envelopes + envelopes
    # ...so a projection, which applies an envelope only when its seq is new, sees each once.
    projection = Recording()
    try:
        result = projection.batch_process(records)
    finally:
        projection.close()
    assert (result.applied, result.duplicates, result.dead_letters) == (5, 5, 0)
    applied_ids: dict[int, list[str]] = {}
    for envelope in projection.applied:
        applied_ids.setdefault(envelope.event_id, []).append(envelope.id)
    assert applied_ids == {e: [envelope["id"] for envelope in w] for e, w in written.items()}


@pytest.mark.django_db
def test_relay_outbox_command_publishes_and_stops_cleanly_on_sigterm():
    written = {9: [outbox_append(9, seq) for seq in (1, 2)]}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": settings.REDIS_URL,
        "SEATS_REDIS_PREFIX": settings.SEATS_REDIS_PREFIX,
        "KAFKA_BOOTSTRAP_SERVERS": ",".join(settings.KAFKA_BOOTSTRAP_SERVERS),
        "KAFKA_TOPIC_SEAT_EVENTS": settings.KAFKA_TOPIC_SEAT_EVENTS,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "relay_outbox"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: topic_has(written), timeout=15, what="the command to publish")
        assert redis_client_get().exists(event_keys(9).relay_lease)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr.decode()
    assert not redis_client_get().exists(event_keys(9).relay_lease)  # handed back on stop
    assert topic_read() == written
