"""`make run`'s launcher, run for real: signals stop it all (Redis last), crashes restart, Redis needs a password."""

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from paperpipeline.redis_server import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
APPS = ("daphne", "worker", "system-worker", "beat")


class RunningLauncher:
    """`python -m paperpipeline.launcher` in a process group of its own, as `make run` would be."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.var_dir = tmp_path / "var"
        self.log_path = tmp_path / "launcher.log"
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
        env.update(
            PORT=str(self.port), PAPERPIPELINE_VAR_DIR=str(self.var_dir), MEDIA_ROOT=str(self.var_dir / "media"),
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", CELERY_CONCURRENCY="1", PYTHONUNBUFFERED="1",
        )
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "paperpipeline.launcher"], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT, process_group=0,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ours(self) -> list[psutil.Process]:
        """Every process started for this launcher, wherever it now hangs: they all carry its var dir."""
        found = []
        for process in psutil.process_iter():
            if process.pid == self.process.pid:
                continue
            try:
                if process.environ().get("PAPERPIPELINE_VAR_DIR") == str(self.var_dir):
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        return found

    def children(self) -> dict[str, psutil.Process]:
        """The launcher's direct children, by the name the launcher gives them."""
        named = {}
        for child in psutil.Process(self.process.pid).children():
            try:
                command = " ".join(child.cmdline())
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            if "redis-server" in command:
                named["redis"] = child
            elif "realtime.server" in command:
                named["daphne"] = child
            elif "-Q papers" in command:
                named["worker"] = child
            elif "-Q system" in command:
                named["system-worker"] = child
            elif " beat" in command:
                named["beat"] = child
        return named

    def wait_for(self, condition, what: str, timeout: float = 90.0):
        """Poll until condition() is truthy (process start-up has no event to await); fail if the launcher exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (value := condition()):
                return value
            assert self.process.poll() is None, f"launcher exited ({self.process.returncode}):\n{self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def answers_http(self) -> bool:
        try:
            requests.get(f"http://127.0.0.1:{self.port}/api/", timeout=2)
            return True
        except (requests.ConnectionError, requests.Timeout):
            return False

    def wait_ready(self) -> dict[str, psutil.Process]:
        """Wait until Daphne answers and all five children run; return them."""
        self.wait_for(self.answers_http, "Daphne to answer HTTP")
        return self.wait_for(lambda: c if len(c := self.children()) == 5 else None, "all five children")

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def cleanup(self) -> None:
        """Whatever a failed test left running goes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for process in self.ours():
            process.kill()


@pytest.fixture
def launcher(tmp_path):
    running = RunningLauncher(tmp_path)
    yield running
    running.cleanup()


def assert_stopped_cleanly(launcher: RunningLauncher) -> None:
    """The launcher exits 0, nothing it started survives, and Redis stopped after every application process."""
    try:
        code = launcher.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"launcher did not exit:\n{launcher.log()}") from None
    log = launcher.log()
    survivors = [(p.pid, p.cmdline()) for p in launcher.ours() if p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"orphaned processes:\n{log}"
    assert code == 0, log
    stopped = re.findall(r"^\[launcher\] (\S+) stopped \(status", log, flags=re.M)
    if "redis" in stopped:
        assert stopped[-1] == "redis", f"Redis stopped before an application process:\n{log}"


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT, signal.SIGINT), (signal.SIGHUP,)],
    ids=["group-sigterm-twice", "sigint-thrice", "sighup"],
)
def test_signals_to_the_process_group_stop_everything_redis_last(launcher, signals):
    children = launcher.wait_ready()
    for signum in signals:
        launcher.signal_group(signum)
    assert_stopped_cleanly(launcher)
    stopped = re.findall(r"^\[launcher\] (\S+) stopped \(status", launcher.log(), flags=re.M)
    assert sorted(stopped) == sorted(children), launcher.log()


def test_a_signal_while_stopping_changes_nothing(launcher):
    launcher.wait_ready()
    launcher.signal_group(signal.SIGTERM)
    launcher.wait_for(lambda: "stopping daphne" in launcher.log(), "the stop to begin")
    launcher.signal_group(signal.SIGINT)
    launcher.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(launcher)


def test_a_storm_of_signals_until_it_exits_still_stops_everything_in_order(launcher):
    launcher.wait_ready()
    storm = itertools.cycle([signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
    while launcher.process.poll() is None:  # until the very end of the launcher's exit
        with contextlib.suppress(ProcessLookupError):
            launcher.signal_group(next(storm))
        time.sleep(0.01)
    assert_stopped_cleanly(launcher)


def test_signals_during_start_up_stop_everything(launcher):
    launcher.wait_for(lambda: "Started embedded redis-server" in launcher.log(), "Redis to start")
    launcher.signal_group(signal.SIGTERM)
    launcher.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(launcher)


def test_a_crashed_child_restarts_with_backoff_and_the_others_are_untouched(launcher):
    children = launcher.wait_ready()
    children["daphne"].kill()
    launcher.wait_for(
        lambda: "daphne exited with status -9; restarting in 1 s" in launcher.log(), "the restart notice"
    )
    restarted = launcher.wait_for(
        lambda: launcher.answers_http() and launcher.children().get("daphne"), "Daphne to answer again"
    )
    assert restarted.pid != children["daphne"].pid
    now = launcher.children()
    for name in ("redis", "worker", "system-worker", "beat"):
        assert now[name].pid == children[name].pid and now[name].is_running(), launcher.log()

    # A second crash soon after waits twice as long.
    restarted.kill()
    launcher.wait_for(lambda: "daphne exited with status -9; restarting in 2 s" in launcher.log(), "backoff")
    launcher.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(launcher)


def test_the_embedded_redis_refuses_clients_without_its_password(launcher):
    children = launcher.wait_ready()
    port = next(c.laddr.port for c in children["redis"].net_connections() if c.status == psutil.CONN_LISTEN)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PUBLISH paperpipeline:papers.all forged\r\n")
        assert sock.recv(100).startswith(b"-NOAUTH"), "an unauthenticated client could publish"
    # The application processes have the password; the console shows it masked, and it is not on any command line.
    password = re.search(r"redis://:([^@]+)@", children["daphne"].environ()["REDIS_URL"]).group(1)
    assert password not in launcher.log() and "redis://:***@127.0.0.1" in launcher.log()
    assert not any(password in " ".join(p.cmdline()) for p in launcher.ours())
    launcher.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(launcher)


def test_every_process_counts_metrics_in_one_directory_emptied_of_a_previous_run(launcher):
    metrics_dir = launcher.var_dir / "metrics"
    stale = metrics_dir / "counter_4194999.db"  # a previous run's file: its counts would be added to this run's
    metrics_dir.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"a previous run")
    children = launcher.wait_ready()
    for name in APPS:
        assert children[name].environ()["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir), name
    assert not stale.exists()
    # Daphne and the workers wrote their own files there, and a scrape from this host adds them up.
    for name in ("daphne", "worker", "system-worker"):
        launcher.wait_for(lambda name=name: list(metrics_dir.glob(f"*_{children[name].pid}.db")), f"{name}'s metrics")
    response = requests.get(f"http://127.0.0.1:{launcher.port}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert 'paperpipeline_metrics_source_up{source="database"} 1.0' in response.text
    assert "paperpipeline_workers_alive" in response.text
    launcher.signal_group(signal.SIGTERM)
    assert_stopped_cleanly(launcher)
