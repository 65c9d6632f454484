"""A dead worker does not take the site down, and comes back (scripts/respawn.py, issue 16).

First respawn.py alone, as a real process around tiny Python children, signalled the way
honcho signals it (its whole process group): a failing command is started again with
growing delays, a run that lasted starts them over, a stop signal reaches the command once
and is not followed by a restart (nor is a back-off waited out), and the command does not
outlive a respawn.py killed outright. Then the real stack (tests/stack.py, honcho on the
Procfile): the relay is killed with SIGKILL, and the site answers throughout while the relay
comes back, then the whole stack still stops cleanly.
"""

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.stack import ROOT, Stack

SCRIPT = ROOT / "scripts" / "respawn.py"
WAIT_S = 30  # a guard against hanging, not a timing
EXITED = re.compile(r"respawn: pid (\d+) (.+) after [\d.]+ s; starting it again in ([\d.]+) s")


class Respawn:
    """scripts/respawn.py around ``python -c child``, in a session of its own as under
    honcho; its output (the child's too, as honcho reads them) line by line."""

    def __init__(self, child: str, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), *options, "--", sys.executable, "-c", child],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, done: Callable[[list[str]], bool]) -> list[str]:
        """The lines so far, once ``done(lines)`` holds."""
        deadline = time.monotonic() + WAIT_S
        while not done(self.lines):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "\n".join(self.lines)
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=remaining))
        return self.lines

    def exits(self) -> list[tuple[str, str]]:
        """(how it ended, the delay announced) of each exit logged so far."""
        return [m.group(2, 3) for line in self.lines if (m := EXITED.search(line))]

    def signal_group(self, signum: int) -> None:
        """What honcho does to stop a process: signal its whole group."""
        os.killpg(self.process.pid, signum)

    def close(self) -> None:
        if self.process.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.process.wait()


def alive(pid: int) -> bool:
    """Running (a zombie, dead and waiting for its parent to read its status, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def respawn():  # type: ignore[no-untyped-def]
    started: list[Respawn] = []

    def start(child: str, *options: str) -> Respawn:
        started.append(Respawn(child, *options))
        return started[-1]

    yield start
    for process in started:
        process.close()


def test_a_failing_command_is_started_again_ever_later(respawn):
    failing = respawn("import sys; sys.exit(3)", "--first-delay", "0.1", "--max-delay", "0.4")
    failing.wait_for(lambda _: len(failing.exits()) == 5)
    assert failing.exits() == [
        ("exited with status 3", delay) for delay in ("0.1", "0.2", "0.4", "0.4", "0.4")
    ]
    pids = [m.group(1) for line in failing.lines if (m := EXITED.search(line))]
    assert len(set(pids)) == 5  # a new process each time


def test_a_stop_during_the_back_off_ends_it_at_once(respawn):
    failing = respawn("import sys; sys.exit(3)", "--first-delay", "600")
    failing.wait_for(lambda _: len(failing.exits()) == 1)
    failing.signal_group(signal.SIGTERM)
    assert failing.process.wait(timeout=WAIT_S) == 128 + signal.SIGTERM
    failing.wait_for(lambda lines: "SIGTERM during the back-off: not restarting" in lines[-1])


def test_a_run_that_lasted_starts_the_back_off_over(respawn):
    lasting = respawn(
        "import sys, time; time.sleep(0.3); sys.exit(1)",
        *("--first-delay", "0.1", "--stable-after", "0.2"),
    )
    lasting.wait_for(lambda _: len(lasting.exits()) == 3)
    assert lasting.exits() == [("exited with status 1", "0.1")] * 3


# A worker in miniature: SIGTERM finishes the batch in hand, then it exits 0.
WORKER = """
import os, signal, sys, time
def stop(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    time.sleep(0.3)  # the batch in hand
    print("batch done", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", os.getpid(), flush=True)
time.sleep(60)
"""


def test_sigterm_reaches_the_command_once_and_is_not_followed_by_a_restart(respawn):
    worker = respawn(WORKER)
    worker.wait_for(lambda lines: any(line.startswith("ready") for line in lines))
    worker.signal_group(signal.SIGTERM)
    assert worker.process.wait(timeout=WAIT_S) == 0  # the command's own status
    lines = worker.wait_for(lambda lines: "batch done" in lines)
    # Once: honcho's killpg reached respawn.py only, which passed it on.
    assert lines.count("got SIGTERM") == 1
    assert not worker.exits()
    assert sum(line.startswith("ready") for line in lines) == 1


def test_the_command_does_not_outlive_respawn_killed_outright(respawn):
    worker = respawn(WORKER)
    lines = worker.wait_for(lambda lines: any(line.startswith("ready") for line in lines))
    child = int(next(line for line in lines if line.startswith("ready")).split()[1])
    worker.signal_group(signal.SIGKILL)  # honcho's last resort, after its grace period
    worker.process.wait(timeout=WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while alive(child):
        assert time.monotonic() < deadline, f"pid {child} outlived respawn.py"
        time.sleep(0.05)


def descendants(pid: int) -> dict[int, list[str]]:
    """Every process under ``pid`` (Linux's /proc): pid → its arguments. honcho starts each
    Procfile process in a session of its own, so its process group would not find them."""
    found: dict[int, list[str]] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            for task in Path(f"/proc/{parent}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                pending += children
                for child in children:
                    arguments = Path(f"/proc/{child}/cmdline").read_bytes().decode()
                    found[child] = arguments.split("\0")[:-1]
        except OSError:
            continue  # it exited meanwhile
    return found


def relay_pid(stack: Stack) -> int | None:
    """The relay itself: ``python manage.py relay_outbox``, not the respawn.py around it
    (nor a shell) whose arguments end the same."""
    assert stack.process is not None
    pids = [
        pid
        for pid, arguments in descendants(stack.process.pid).items()
        if arguments[1:3] == ["manage.py", "relay_outbox"] and alive(pid)
    ]
    assert len(pids) <= 1, pids
    return pids[0] if pids else None


def status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None  # refused: nothing listens


@pytest.mark.django_db(transaction=True)
def test_a_killed_relay_comes_back_while_the_site_serves():
    log_path = ROOT / "artifacts" / "e2e" / "supervisor-stack.log"
    with Stack(log_path, processes=["proxy", "web", "relay"]) as stack:
        relay_metrics = stack.metrics_url("relay")
        deadline = time.monotonic() + WAIT_S
        while status(relay_metrics) != 200 or relay_pid(stack) is None:
            assert time.monotonic() < deadline, stack.log_tail()
            time.sleep(0.2)
        first = relay_pid(stack)
        assert first is not None

        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + WAIT_S
        site: list[int | None] = []  # /healthz through the proxy, all along
        while True:
            assert stack.process.poll() is None, f"honcho stopped:\n{stack.log_tail()}"
            site.append(status(f"{stack.url}/healthz"))
            now = relay_pid(stack)
            if now not in (None, first) and status(relay_metrics) == 200:
                break
            assert time.monotonic() < deadline, stack.log_tail()
            time.sleep(0.1)
        assert set(site) == {200}, site
        assert f"respawn: pid {first} was killed by SIGKILL" in log_path.read_text()
        assert "starting it again in 1 s" in log_path.read_text()
        # honcho itself never noticed: it stops everything once one process exits.
        assert "sending SIGTERM" not in log_path.read_text(), stack.log_tail()
        everyone = descendants(stack.process.pid)

    # Stopped cleanly: the relay as before (one SIGTERM, the batch in hand finished, exit 0,
    # passed on by respawn.py to honcho), within honcho's grace period (no SIGKILL), and
    # nothing left running once honcho is gone.
    log = log_path.read_text()
    assert stack.process.returncode is not None
    assert log.count("outbox relay: SIGTERM received, stopping after the batch") == 1, log
    assert "relay.1 stopped (rc=0)" in log, stack.log_tail()
    assert "sending SIGKILL" not in log, stack.log_tail()
    assert not [pid for pid in everyone if alive(pid)], everyone
