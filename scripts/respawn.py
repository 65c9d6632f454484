"""Runs a command and starts it again whenever it exits: the Procfile's workers under honcho.

honcho stops every process of the Procfile as soon as one exits, and has no option to
restart one instead: a relay killed by the OOM killer would take the web server down with
it. Wrapped in this, a worker that dies is started again and honcho never sees it go:

    python scripts/respawn.py [--first-delay 1] [--max-delay 30] [--stable-after 60] -- COMMAND…

The Procfile `exec`s it from honcho's shell, so that honcho waits for it (and so for the
worker) when it stops the stack.

Back-off: the first restart waits --first-delay seconds, each one after that twice as long
as the last, at most --max-delay, so a worker that cannot start (its database is down, say)
retries slowly instead of spinning; a run that lasted --stable-after seconds was a working
one, and the next restart waits --first-delay again. Each exit is logged on stderr (honcho
shows it as the process's output) with its status and the delay.

Stopping: SIGTERM or SIGINT is passed on to the command, which stops as it would without
this (a worker finishes the batch in hand; a second signal, passed on too, stops it at
once); then this exits with the command's status instead of restarting it. A signal during
the back-off ends it at once. A command that cannot be started at all (not found) is a
mistake in the Procfile, not a crash: this fails, and honcho stops the stack.
"""

import argparse
import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# Taken with sigwaitinfo, never by handlers: a signal that arrives while the command is
# being started waits for the loop instead of racing it (a handler could run between the
# fork and the moment it knows the new child's pid, and the child would miss its signal).
WATCHED = STOP_SIGNALS | {signal.SIGCHLD}
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def say(message: str) -> None:
    print(f"respawn: {message}", file=sys.stderr, flush=True)


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def exit_status(returncode: int) -> int:
    """A shell's convention: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def child_setup(parent: int) -> None:
    """Runs in the command's process between fork and exec (this program has no threads, so
    Python code is safe there)."""
    # The blocked signals would be inherited through exec: the command must get its own.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
    if LIBC is not None:
        # If this process is killed outright (honcho's SIGKILL once its grace period is over),
        # the kernel kills the command too, as honcho's SIGKILL would have without this.
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # this process died before the prctl took effect
            os._exit(1)


def run_once(command: list[str]) -> tuple[int, int, bool]:
    """Runs the command to its end: (its pid, its return code, whether it was asked to
    stop)."""
    parent = os.getpid()
    # A process group of its own: honcho signals a process's whole group (killpg), and in
    # this one the command would get each signal twice, from honcho and passed on by this,
    # and a worker takes a second SIGTERM for "stop at once".
    child = subprocess.Popen(command, process_group=0, preexec_fn=lambda: child_setup(parent))
    say(f"pid {child.pid}: {shlex.join(command)}")
    stopping = False
    while True:
        signum = signal.sigwaitinfo(WATCHED).si_signo
        if signum == signal.SIGCHLD:
            if child.poll() is not None:
                return child.pid, child.returncode, stopping
            continue
        stopping = True
        # To its group, as honcho would have signalled it. No such group: the command has
        # just exited, and its SIGCHLD is on the way.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-delay", type=float, default=1.0, metavar="S")
    parser.add_argument("--max-delay", type=float, default=30.0, metavar="S")
    parser.add_argument("--stable-after", type=float, default=60.0, metavar="S")
    parser.add_argument("command", nargs="+", help="after --: the command and its arguments")
    args = parser.parse_args()

    # SIGCHLD must be delivered (an inherited SIG_IGN would reap the child behind our back).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    delay = args.first_delay
    while True:
        started = time.monotonic()
        pid, returncode, stopping = run_once(args.command)
        if stopping:
            sys.exit(exit_status(returncode))
        uptime = time.monotonic() - started
        if uptime >= args.stable_after:
            delay = args.first_delay
        say(
            f"pid {pid} {how_it_ended(returncode)} after {uptime:.1f} s;"
            f" starting it again in {delay:g} s"
        )
        stop = signal.sigtimedwait(STOP_SIGNALS, delay)
        if stop is not None:
            say(f"{signal.Signals(stop.si_signo).name} during the back-off: not restarting")
            sys.exit(128 + stop.si_signo)
        delay = min(delay * 2, args.max_delay)


if __name__ == "__main__":
    main()
