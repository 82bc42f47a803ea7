"""End-to-end fixtures: real Daphne, real Celery workers and beat, on the session's real Redis and test database."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from paperpipeline.launcher import process_commands
from paperpipeline.redis_server import free_port, start_redis_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


def _database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for subprocesses, pointing at the test database pytest-django created."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    auth = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else "")
    return f"postgres://{auth}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


@dataclass
class LiveSystem:
    """Handles on the running processes and where to reach them."""

    base_url: str
    ws_url: str
    # Every Daphne's URLs, the first one (base_url, ws_url) included.
    base_urls: list[str] = field(default_factory=list)
    ws_urls: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def restart(self, name: str) -> None:
        """Stop one process with SIGTERM and start it again the same way (same port for Daphne)."""
        process = self.processes[name]
        process.terminate()
        process.wait(timeout=20)
        self.start(name, *self.commands[name])

    def log_tails(self, lines: int = 40) -> str:
        """The end of every process's log, for assertion messages."""
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ({path}) ---\n" + "\n".join(text))
        return "\n".join(out)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        """Start one process with its output in a log file."""
        mode = "a" if name in self.logs else "w"  # a restart appends to the same log
        self.commands[name] = (command, env)
        self.logs[name] = ARTIFACTS / f"{name}.log"
        handle = self.logs[name].open(mode)
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        """SIGTERM everything and wait."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_http(system: LiveSystem, base_url: str, timeout: float = 30) -> None:
    """Poll until Daphne answers HTTP (a port opening has no event to await)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in system.processes.values()):
            break
        try:
            # Any answer will do: with the HTTPS-only settings it is a redirect to an https:// nobody serves here.
            requests.get(f"{base_url}/api/", timeout=1, allow_redirects=False)
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still starting up
            time.sleep(0.1)
    raise AssertionError(f"Daphne at {base_url} did not start:\n" + system.log_tails())


SERVERS = ("daphne", "uvicorn")


def web_command(server: str, port: int) -> list[str] | None:
    """The command of the web process on another ASGI server than this project's Daphne (None: Daphne, as the
    launcher starts it). uvicorn runs the same application with its default WebSocket implementation."""
    if server == "daphne":
        return None
    assert server == "uvicorn", server
    return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--ws", "websockets-sansio", "--lifespan", "off", "paperpipeline.asgi:application"]


@contextlib.contextmanager
def running_system(
    *, redis_url: str, name: str = "", daphnes: int = 1, workers: int = 1, concurrency: str = "2",
    only: tuple[str, ...] | None = None, server: str = "daphne", commands_for=process_commands, **overrides: str
):
    """Daphne, a pipeline worker, a system worker and beat, as `make run` starts them, on the test database.

    `only` names the processes to start (e.g. ("daphne",)), for tests that need no pipeline.
    `server="uvicorn"` runs the web process (still named "daphne" here) on uvicorn instead of Daphne.
    `commands_for(port=, concurrency=)` gives the commands by process name (default: the launcher's).

    Scale-out: `daphnes` Daphne processes on ports of their own and `workers` pipeline workers (node names
    distinct by port, all on queue "papers"); the system worker and beat run once. The extra processes are
    named "daphne-2", "worker-2", ...
    """
    from django.db import connection

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ports: list[int] = []
    while len(ports) < max(daphnes, workers, 1):
        if (candidate := free_port()) not in ports:
            ports.append(candidate)
    port = ports[0]
    # Every process counts its metrics in files there, as under the launcher (docs/operations.md, "Metrics").
    metrics_dir = tempfile.mkdtemp(prefix=f"{name}metrics-")
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "REDIS_URL": redis_url,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SYSTEM_STATUS_INTERVAL": "1",
        "PROGRESS_MIN_INTERVAL": "0.05",
        "WS_PING_INTERVAL": "1",
        "WS_PING_TIMEOUT": "4",  # a loaded 2-core CI box can be slow to pong; the checks run every 2 s
        # Pluggable by setting: marked papers run slowly, giving fault tests a window mid-paper.
        "PAPER_ENTITY_EXTRACTOR": "tests.e2e.slow_extractor.extract_entities",
        "PYTHONUNBUFFERED": "1",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        **overrides,
    }
    system = LiveSystem(
        base_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}/ws/papers",
        base_urls=[f"http://127.0.0.1:{p}" for p in ports[:daphnes]],
        ws_urls=[f"ws://127.0.0.1:{p}/ws/papers" for p in ports[:daphnes]],
    )
    try:
        for index, each_port in enumerate(ports):
            wanted = {"daphne": index < daphnes, "worker": index < workers}
            commands = commands_for(port=str(each_port), concurrency=concurrency)
            commands["daphne"] = web_command(server, each_port) or commands["daphne"]
            for process, command in commands.items():
                if wanted.get(process, index == 0) and (only is None or process in only):
                    system.start(f"{name}{process}" + (f"-{index + 1}" if index else ""), command, env)
        for base_url in system.base_urls:
            _wait_http(system, base_url)
        yield system
    finally:
        system.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def live_system(django_db_setup, django_db_blocker):
    """The system on the test session's Redis, shared by the end-to-end tests."""
    with running_system(redis_url=os.environ["REDIS_URL"]) as system:
        yield system


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server for one test's system alone: the package's `live_system` may still be running on the
    session's Redis, and its worker, also on queue "papers", would take papers meant for the test's workers."""
    process, url = start_redis_server(workdir=tmp_path / "redis")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def private_redis():
    """A redis-server of this test's own, which it may stop and start again on the same port."""
    workdir = Path(tempfile.mkdtemp(prefix="redis-private-"))
    process, url = start_redis_server(workdir=workdir)
    state = {"process": process, "url": url, "workdir": workdir}
    yield state
    state["process"].terminate()
    state["process"].wait(timeout=10)
