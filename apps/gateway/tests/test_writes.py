"""Twisted writes that go out at once when nothing is queued (apps/gateway/writes.py), on a
real TCP connection of Twisted's, its reactor driven by hand."""

import socket

import pytest
from twisted.internet import tcp

from apps.gateway import writes


class Recorder:
    """Stands in for Twisted's queueing write: records what it was asked to queue."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []

    def __call__(self, connection: tcp.Connection, data: bytes) -> None:
        self.queued.append(data)


@pytest.fixture
def connection():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    conn = tcp.Connection(ours, protocol=None)
    conn.connected = True
    yield conn, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def queued(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(writes, "_queued_write", recorder)
    return recorder


def test_a_write_with_nothing_queued_is_sent_at_once(connection, queued):
    conn, peer = connection
    writes._write(conn, b"frame-1")
    assert peer.recv(100) == b"frame-1"
    assert queued.queued == []  # never handed to the reactor: no epoll registration


def test_behind_queued_data_a_write_waits_its_turn(connection, queued):
    conn, peer = connection
    conn._tempDataBuffer.append(b"earlier")
    writes._write(conn, b"frame-2")
    assert queued.queued == [b"frame-2"]  # order kept: after what is queued
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)


def test_what_the_kernel_does_not_take_is_queued(connection, queued):
    conn, peer = connection
    conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = b"x" * 4_000_000
    writes._write(conn, big)
    assert len(queued.queued) == 1
    sent = len(big) - len(queued.queued[0])
    assert 0 < sent < len(big)
    assert big.endswith(queued.queued[0])
