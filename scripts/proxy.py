"""The `proxy` process of the Procfile: nginx on SEATS_PORT in front of web and ws.

Renders config/nginx/seats.conf.template (the file the compose file's nginx uses too)
with this run's addresses, wraps it in a main configuration that keeps every file nginx
writes under SEATS_RUN_DIR (default .local/nginx), and execs nginx in the foreground.

By default the upstreams are this machine's web (SEATS_HTTP_PORT) and ws (SEATS_WS_PORT).
SEATS_HTTP_UPSTREAMS and SEATS_WS_UPSTREAMS (comma-separated host:port) replace them with
several nodes' (docs/architecture.md, "Several web nodes"): the template's `server` line
of each upstream is written once per address, and nginx spreads requests and sockets
over them round robin.
"""

import os
import re
import shutil
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "config" / "nginx" / "seats.conf.template"

MAIN = """\
# Written by scripts/proxy.py for this run; edit config/nginx/seats.conf.template instead.
daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/seats.conf;
}}
"""

# The template's variable → (the list that replaces it, the local port, its default).
UPSTREAMS = {
    "SEATS_HTTP_UPSTREAM": ("SEATS_HTTP_UPSTREAMS", "SEATS_HTTP_PORT", "8001"),
    "SEATS_WS_UPSTREAM": ("SEATS_WS_UPSTREAMS", "SEATS_WS_PORT", "8002"),
}
# host:port, [v6]:port: anything else would be nginx syntax written into the configuration.
ADDRESS = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}")


def upstream_addresses(name: str) -> list[str]:
    listed, port, default = UPSTREAMS[name]
    addresses = [a.strip() for a in os.environ.get(listed, "").split(",") if a.strip()]
    for address in addresses:
        if not ADDRESS.fullmatch(address):
            sys.exit(f"{listed}: {address!r} is not host:port")
    return addresses or [f"127.0.0.1:{os.environ.get(port, default)}"]


def render(template: str, listen: str, upstreams: dict[str, list[str]]) -> str:
    """The template with these addresses: a line naming an upstream's variable is written
    once per address of that upstream (one `server` line each), then SEATS_LISTEN is filled
    in. nginx's own $variables are left alone."""
    lines: list[str] = []
    for line in template.splitlines(keepends=True):
        name = next((n for n in upstreams if f"${{{n}}}" in line), None)
        if name is None:
            lines.append(line)
        else:
            lines.extend(Template(line).safe_substitute({name: a}) for a in upstreams[name])
    return Template("".join(lines)).safe_substitute(SEATS_LISTEN=listen)


def main() -> None:
    port = os.environ.get("SEATS_PORT", "8000")
    run = Path(os.environ.get("SEATS_RUN_DIR", ROOT / ".local" / "nginx")).resolve()
    run.mkdir(parents=True, exist_ok=True)
    site = render(
        TEMPLATE.read_text(),
        listen=f"127.0.0.1:{port}",
        upstreams={name: upstream_addresses(name) for name in UPSTREAMS},
    )
    (run / "seats.conf").write_text(site)
    (run / "nginx.conf").write_text(MAIN.format(run=run))
    nginx = shutil.which("nginx")
    if nginx is None:
        sys.exit("nginx not found: `make install` puts one in .venv/bin")
    # -e: the log nginx opens before it has read its configuration.
    os.execv(nginx, [nginx, "-e", "stderr", "-p", str(run), "-c", str(run / "nginx.conf")])  # noqa: S606


if __name__ == "__main__":
    main()
