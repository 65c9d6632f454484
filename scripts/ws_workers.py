"""The `ws` process of the Procfile: several daphne processes sharing one listening socket.

Daphne serves one process; an on-sale's sockets need several (docs/architecture.md,
Gateway). This binds SEATS_WS_HOST:SEATS_WS_PORT once and starts SEATS_WS_WORKERS daphne
processes on that socket (daphne --fd): the kernel hands each new connection to one of
them, so the proxy in front sees one address. A worker that dies is started again;
SIGINT/SIGTERM stop them all.

With PROMETHEUS_MULTIPROC_DIR set, the workers write their metrics there and each one's
/metrics reports them all (apps/core/metrics.py): this empties the directory first and
drops a dead worker's live gauges (its open sockets are gone with it).

    python scripts/ws_workers.py [daphne options …]     # extra options go to every worker
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

# Below this uptime a worker that exits is failing to start, not crashing: give up.
MIN_UPTIME_S = 5.0


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)  # a connect storm queues here, not in refused SYNs
    sock.set_inheritable(True)
    return sock


def worker_start(sock: socket.socket, extra: list[str]) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "daphne", "--fd", str(sock.fileno()),
        "--ping-interval", "10", "--ping-timeout", "10",
        *extra, "config.asgi:application",
    ]  # fmt: skip
    return subprocess.Popen(command, pass_fds=(sock.fileno(),))


def metrics_dir_reset() -> str | None:
    """Empty PROMETHEUS_MULTIPROC_DIR: a past run's files would still count."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    return path


def metrics_worker_dead(path: str | None, pid: int) -> None:
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def main() -> None:
    metrics_dir = metrics_dir_reset()
    host = os.environ.get("SEATS_WS_HOST", "127.0.0.1")
    port = int(os.environ.get("SEATS_WS_PORT", "8002"))
    count = int(os.environ.get("SEATS_WS_WORKERS", "2"))
    sock = listening_socket(host, port)
    workers = {worker_start(sock, sys.argv[1:]): time.monotonic() for _ in range(count)}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"ws: {count} daphne workers on {host}:{port}", flush=True)
    while workers:
        time.sleep(0.5)
        for worker, started in list(workers.items()):
            code = worker.poll()
            if code is None:
                continue
            del workers[worker]
            metrics_worker_dead(metrics_dir, worker.pid)
            if stopping:
                continue
            if time.monotonic() - started < MIN_UPTIME_S:
                stop(signal.SIGTERM, None)
                print(f"ws: a worker exited with {code} at start; stopping", flush=True)
                sys.exit(code or 1)
            print(f"ws: a worker exited with {code}; starting another", flush=True)
            workers[worker_start(sock, sys.argv[1:])] = time.monotonic()
    sys.exit(0)


if __name__ == "__main__":
    main()
