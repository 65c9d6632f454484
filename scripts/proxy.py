"""The `proxy` process of the Procfile: nginx on SEATS_PORT in front of web and ws.

Renders config/nginx/seats.conf.template (the file the compose file's nginx uses too)
with this run's addresses, wraps it in a main configuration that keeps every file nginx
writes under SEATS_RUN_DIR (default .local/nginx), and execs nginx in the foreground.
"""

import os
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


def main() -> None:
    port = os.environ.get("SEATS_PORT", "8000")
    run = Path(os.environ.get("SEATS_RUN_DIR", ROOT / ".local" / "nginx")).resolve()
    run.mkdir(parents=True, exist_ok=True)
    site = Template(TEMPLATE.read_text()).safe_substitute(
        SEATS_LISTEN=f"127.0.0.1:{port}",
        SEATS_HTTP_UPSTREAM=f"127.0.0.1:{os.environ.get('SEATS_HTTP_PORT', '8001')}",
        SEATS_WS_UPSTREAM=f"127.0.0.1:{os.environ.get('SEATS_WS_PORT', '8002')}",
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
