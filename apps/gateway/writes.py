"""Twisted TCP writes that go out at once when nothing is queued before them.

Twisted buffers every ``transport.write`` and sends it on the reactor's next turn; on the
asyncio reactor daphne runs, that registers the socket for writing with epoll and
unregisters it after, around every single write. A live frame is one write to each of
thousands of sockets, and that churn was most of a ws process's time (docs/architecture.md,
Gateway). Here a write to a connection with nothing queued is sent straight away, as
asyncio's own transports do; only what the kernel does not take is queued, the Twisted way.

Replaces ``twisted.internet.tcp.Connection.write`` (Twisted 26.10, pinned); revisit on
upgrade. Installed by ``config/asgi.py``: only the WebSocket processes run Twisted.
"""

from twisted.internet import tcp

_queued_write = tcp.Connection.write


def _write(self: tcp.Connection, data: bytes) -> None:
    idle = not self._tempDataBuffer and self.offset == len(self.dataBuffer)
    if data and idle and not self.TLS and self.connected and not self._writeDisconnected:
        sent = self.writeSomeData(data)
        if not isinstance(sent, int):  # the connection is gone: doWrite will say so
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    _queued_write(self, data)


def writes_immediate_install() -> None:
    tcp.Connection.write = _write  # type: ignore[method-assign,assignment]
