"""End-to-end fixtures: real Daphne, real Celery workers and beat, on the session's real Redis and test database."""

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from paperpipeline.launcher import process_commands
from paperpipeline.redis_server import free_port

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


def _wait_http(system: LiveSystem, timeout: float = 30) -> None:
    """Poll until Daphne answers HTTP (a port opening has no event to await)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in system.processes.values()):
            break
        try:
            requests.get(f"{system.base_url}/api/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("Daphne did not start:\n" + system.log_tails())


@contextlib.contextmanager
def running_system(*, redis_url: str, name: str = "", **overrides: str):
    """Daphne, a pipeline worker, a system worker and beat, as `make run` starts them, on the test database."""
    from django.db import connection

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "REDIS_URL": redis_url,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SYSTEM_STATUS_INTERVAL": "1",
        "PROGRESS_MIN_INTERVAL": "0.05",
        "WS_PING_INTERVAL": "1",
        "WS_PING_TIMEOUT": "2",
        # Pluggable by setting: marked papers run slowly, giving fault tests a window mid-paper.
        "PAPER_ENTITY_EXTRACTOR": "tests.e2e.slow_extractor.extract_entities",
        "PYTHONUNBUFFERED": "1",
        **overrides,
    }
    system = LiveSystem(base_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}/ws/papers")
    try:
        for process, command in process_commands(port=str(port)).items():
            system.start(f"{name}{process}", command, env)
        _wait_http(system)
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="package")
def live_system(django_db_setup, django_db_blocker):
    """The system on the test session's Redis, shared by the end-to-end tests."""
    with running_system(redis_url=os.environ["REDIS_URL"]) as system:
        yield system
