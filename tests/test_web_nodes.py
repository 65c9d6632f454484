"""Two web nodes, as two machines on the same backing services, share one live map
(docs/architecture.md, "Several web nodes").

Node A runs the Procfile's proxy, web and ws and the workers (relay, persistence, stats,
gateway); node B, a pure web node, only proxy, web and ws. Each is a honcho process group
of its own (tests/stack.py) with its own ports and metrics, on the test's database, Redis
prefix and Kafka topics. A third proxy is the one origin over both (SEATS_HTTP_UPSTREAMS,
SEATS_WS_UPSTREAMS).

A socket on node A sees a hold made through node B's HTTP, and a socket on node B sees the
same buyer (the session is in Redis) release and reserve through node A, each within
FRAME_S (a guard, not a timing: the delays are printed and written to
artifacts/e2e/web-nodes.txt). Through the one origin, two sockets land one on each node's
ws, two holds one on each node's web, and both sockets see both holds.

First, without a stack: scripts/proxy.py's configuration for one node (the default, as it
always was) and for several, which nginx accepts.
"""

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from string import Template

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import ClientConnection, connect

from apps.reservations import services
from apps.reservations.layouts import SeatGrid
from apps.reservations.models import Event
from apps.reservations.tests.factories import EventFactory, SectionFactory, VenueFactory
from tests.stack import PROCESSES, ROOT, Browser, Stack

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = ROOT / "artifacts" / "e2e"
WEB_NODE = ["proxy", "web", "ws"]  # a pure web node: no workers
FRAME_S = 5.0  # a change reaches the other node's sockets sub-second; this guards a hang
PIPELINE_S = 60  # the first consumer-group joins on the broker take seconds
PROXY = runpy.run_path(str(ROOT / "scripts" / "proxy.py"))  # its functions, not its main()


def proxy_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """The site configuration scripts/proxy.py writes with (only) this environment."""
    for name in ("SEATS_HTTP_UPSTREAMS", "SEATS_WS_UPSTREAMS", "SEATS_HTTP_PORT", "SEATS_WS_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    upstreams = {name: PROXY["upstream_addresses"](name) for name in PROXY["UPSTREAMS"]}
    return PROXY["render"](PROXY["TEMPLATE"].read_text(), "127.0.0.1:8000", upstreams)


def servers(config: str, upstream: str) -> list[str]:
    block = config.split(f"upstream {upstream} {{", 1)[1].split("}", 1)[0]
    return re.findall(r"^\s*server (\S+);$", block, flags=re.MULTILINE)


def test_the_proxy_writes_one_server_line_per_node(monkeypatch, tmp_path: Path):
    # One node by default: the template filled in, exactly as before several were possible.
    one = proxy_config(monkeypatch, SEATS_HTTP_PORT="9001", SEATS_WS_PORT="9002")
    assert one == Template(PROXY["TEMPLATE"].read_text()).safe_substitute(
        SEATS_LISTEN="127.0.0.1:8000",
        SEATS_HTTP_UPSTREAM="127.0.0.1:9001",
        SEATS_WS_UPSTREAM="127.0.0.1:9002",
    )
    several = proxy_config(
        monkeypatch,
        SEATS_HTTP_UPSTREAMS="10.0.0.1:8001, 10.0.0.2:8001",
        SEATS_WS_UPSTREAMS="10.0.0.1:8002,10.0.0.2:8002,[::1]:8002",
        SEATS_HTTP_PORT="9001",  # the lists replace the local ones
    )
    assert servers(several, "seats_http") == ["10.0.0.1:8001", "10.0.0.2:8001"]
    assert servers(several, "seats_ws") == ["10.0.0.1:8002", "10.0.0.2:8002", "[::1]:8002"]
    # Nothing else differs: the same directives around the server lines.
    without_servers = re.compile(r"^\s*server [^ ]+;\n", flags=re.MULTILINE)
    assert without_servers.sub("", several) == without_servers.sub("", one)
    # nginx accepts it (and `make run` renders the same way).
    (tmp_path / "seats.conf").write_text(several)
    (tmp_path / "nginx.conf").write_text(PROXY["MAIN"].format(run=tmp_path))
    # As the stack finds it: this virtualenv's (`make install`), else the PATH's.
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    nginx = shutil.which("nginx", path=search)
    assert nginx, "no nginx: `make install` puts one in .venv/bin"
    checked = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    # An address is host:port, never more nginx syntax.
    with pytest.raises(SystemExit, match="is not host:port"):
        proxy_config(monkeypatch, SEATS_HTTP_UPSTREAMS="10.0.0.1:8001; evil")


def sale_open() -> Event:
    venue = VenueFactory(name="Two Nodes Hall")
    section = SectionFactory(venue=venue, name="A", category__price=Decimal("40.00"))
    services.section_seats_generate(section=section, grid=SeatGrid(rows=3, seats_per_row=6))
    event = EventFactory(venue=venue, sale_status=Event.SaleStatus.DRAFT, max_seats_per_hold=4)
    services.event_open_sale(event=event)
    return event


class MapSocket:
    """A buyer's live map on one address: the snapshot, then the `changes` frames."""

    def __init__(self, running: ExitStack, stack: Stack, event: Event) -> None:
        self.stack = stack
        self.socket: ClientConnection = running.enter_context(
            connect(
                f"ws://127.0.0.1:{stack.port}/ws/events/{event.pk}/",
                origin=stack.url,
                open_timeout=10,
            )
        )
        snapshot = json.loads(self.socket.recv(timeout=10))
        assert snapshot["type"] == "snapshot", snapshot

    def sees(self, change: str, seats: list[str], within: float = FRAME_S) -> float:
        """Read frames until one carries ``change`` of ``seats``; when it was read."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.socket.recv(timeout=left))
            except TimeoutError:
                break
            if frame["type"] != "changes":
                continue
            for item in frame["items"]:
                if item["type"] == change and set(seats) <= set(item["data"]["seats"]):
                    return time.monotonic()
        raise AssertionError(
            f"no {change} of {seats} within {within} s on {self.stack.url}\n{self.stack.log_tail()}"
        )


def pipeline_wait(socket: MapSocket, event: Event) -> None:
    """Hold and release a seat until node A's socket sees it: relay, broker and the
    gateway's consumer group are then live."""
    hold = services.hold_create(event_id=event.pk, holder="session:warm-up", seats=["A-3-6"])
    socket.sees("seat.held", ["A-3-6"], within=PIPELINE_S)
    services.hold_release(token=hold.token, holder="session:warm-up")
    socket.sees("seat.released", ["A-3-6"], within=PIPELINE_S)


def metric(stack: Stack, process: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples with ``labels`` on one node's ``process``."""
    with urllib.request.urlopen(stack.metrics_url(process), timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def holds_granted(node: Stack) -> float:
    return metric(node, "web", "seats_commands_total", command="hold", outcome="granted")


def logs(*nodes: Stack) -> str:
    return "\n".join(f"--- {node.log_path.name}\n{node.log_tail()}" for node in nodes)


def command(
    buyer: Browser, path: str, body: dict, expected: int, nodes: tuple[Stack, ...]
) -> tuple[dict, float, float]:
    """POST a buyer's command: its answer, when it was sent and when it was answered."""
    sent = time.monotonic()
    try:
        status, answer, _ = buyer.post(path, body)
    except json.JSONDecodeError as error:  # an error page, not the API: the logs say why
        raise AssertionError(f"{path}: {error.doc[:300]!r}\n{logs(*nodes)}") from error
    assert status == expected, (status, answer)
    return answer, sent, time.monotonic()


def test_a_socket_on_one_node_sees_the_holds_made_through_the_other():
    event = sale_open()
    holds = f"/api/events/{event.pk}/holds"
    # What → (request sent → frame read, answer → frame read), in seconds.
    delays: dict[str, tuple[float, float]] = {}

    def seen(
        what: str, socket: MapSocket, change: str, seats: list[str], sent: float, answered: float
    ) -> None:
        read = socket.sees(change, seats)
        delays[what] = (read - sent, read - answered)

    started = time.monotonic()
    with ExitStack() as running:
        # One after another: each node binds its ports before the next picks its own.
        a = running.enter_context(Stack(ARTIFACTS / "web-nodes-a.log", PROCESSES))
        b = running.enter_context(Stack(ARTIFACTS / "web-nodes-b.log", WEB_NODE))
        origin = running.enter_context(
            Stack(
                ARTIFACTS / "web-nodes-origin.log",
                ["proxy"],
                env={
                    "SEATS_HTTP_UPSTREAMS": f"127.0.0.1:{a.http_port},127.0.0.1:{b.http_port}",
                    "SEATS_WS_UPSTREAMS": f"127.0.0.1:{a.ws_port},127.0.0.1:{b.ws_port}",
                },
            )
        )
        nodes = (a, b, origin)
        on_a, on_b = MapSocket(running, a, event), MapSocket(running, b, event)
        assert metric(a, "ws", "seats_ws_sockets") == metric(b, "ws", "seats_ws_sockets") == 1
        pipeline_wait(on_a, event)
        stacks_up = time.monotonic() - started

        # A hold through node B's HTTP, on node A's socket (and on B's own).
        buyer = Browser(b.url)
        hold, *at = command(buyer, holds, {"seats": ["A-1-1", "A-1-2"]}, 201, nodes)
        seen("hold via B → socket on A", on_a, "seat.held", hold["seats"], *at)
        on_b.sees("seat.held", hold["seats"])

        # The same buyer through node A (its session is in Redis): the release and then
        # a reservation, on node B's socket.
        buyer.base_url = a.url
        _, *at = command(buyer, f"/api/holds/{hold['hold_token']}/release", {}, 200, nodes)
        seen("release via A → socket on B", on_b, "seat.released", hold["seats"], *at)
        hold, *at = command(buyer, holds, {"seats": ["A-1-3"]}, 201, nodes)
        seen("hold via A → socket on B", on_b, "seat.held", ["A-1-3"], *at)
        _, *at = command(buyer, f"/api/holds/{hold['hold_token']}/reserve", {}, 201, nodes)
        seen("reserve via A → socket on B", on_b, "seat.reserved", ["A-1-3"], *at)
        on_a.sees("seat.reserved", ["A-1-3"])

        # The one origin over both nodes: round robin puts one socket on each node's ws
        # and one hold on each node's web; both sockets see both holds.
        first, second = MapSocket(running, origin, event), MapSocket(running, origin, event)
        assert metric(a, "ws", "seats_ws_sockets") == metric(b, "ws", "seats_ws_sockets") == 2
        granted = {node.url: holds_granted(node) for node in (a, b)}
        for n, seats in enumerate((["A-2-1", "A-2-2"], ["A-2-3"]), start=1):
            _, *at = command(Browser(origin.url), holds, {"seats": seats}, 201, nodes)
            seen(f"hold {n} via the origin → its first socket", first, "seat.held", seats, *at)
            seen(f"hold {n} via the origin → its second socket", second, "seat.held", seats, *at)
        assert {node.url: holds_granted(node) - granted[node.url] for node in (a, b)} == {
            a.url: 1,
            b.url: 1,
        }

    report = "request → frame on the socket (answer → frame)\n" + "".join(
        f"{what}: {request * 1000:.0f} ms ({answer * 1000:.0f} ms)\n"
        for what, (request, answer) in delays.items()
    )
    report += f"three stacks up and the pipeline warm: {stacks_up:.1f} s\n"
    (ARTIFACTS / "web-nodes.txt").write_text(report)
    print(report)
