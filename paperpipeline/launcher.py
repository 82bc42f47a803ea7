"""`make run`: Redis (unless REDIS_URL), migrations, Daphne, Celery workers and beat, kept running until a signal.

Signals (SIGINT, SIGTERM, SIGHUP) only set a flag and wake the main loop through a self-pipe, so no exception
ever starts inside the start-up or stop code: however many arrive, and whenever, the launcher stops the
application processes, waits for them (killing those still running after STOP_TIMEOUT), then stops Redis.
Further signals while stopping change nothing; the timeout bounds the stop. A child that exits on its own is
restarted after a delay that doubles from RESTART_DELAY to RESTART_DELAY_MAX, reset once it ran STABLE_AFTER.
"""

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .logs import json_line
from .redis_server import die_with_parent, redacted, start_redis_server
from .security import prepare_https_setting

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_TIMEOUT = 20.0  # seconds a child gets to stop after SIGTERM before it is killed
RESTART_DELAY, RESTART_DELAY_MAX, STABLE_AFTER = 1.0, 30.0, 60.0


def process_commands(*, port: str, host: str = "127.0.0.1", concurrency: str = "2") -> dict[str, list[str]]:
    """The long-running processes of the system, by name (end-to-end tests start the same ones)."""
    python = sys.executable
    # With JSON logs, no start-up banner: every line a worker or beat writes is then one JSON object.
    celery = [python, "-m", "celery", "-A", "paperpipeline", *(["--quiet"] if _json_logs() else [])]
    return {
        "daphne": [python, "-m", "realtime.server", "-b", host, "-p", port, "paperpipeline.asgi:application"],
        "worker": [*celery, "worker", "-Q", "papers", "-n", f"papers-{port}@%h", "-c", concurrency, "-l", "INFO"],
        # System tasks get their own worker so a busy pipeline never delays system_status.
        "system-worker": [*celery, "worker", "-Q", "system", "-n", f"system-{port}@%h", "-P", "solo", "-l", "WARNING"],
        "beat": [*celery, "beat", "-l", "WARNING"],  # schedule file: CELERY_BEAT_SCHEDULE_FILENAME
    }


def _json_logs() -> bool:
    """Whether LOG_FORMAT asks every process, this one included, for JSON lines."""
    return os.environ.get("LOG_FORMAT", "plain").strip().lower() == "json"


def log(message: str) -> None:
    """One line of the launcher's own output, among its children's (a JSON object with LOG_FORMAT=json)."""
    print(json_line(message, logger="paperpipeline.launcher") if _json_logs() else f"[launcher] {message}", flush=True)


@dataclass
class Child:
    """One supervised process: how to start it, its current process, and its restart schedule."""

    name: str
    spawn: Callable[[], subprocess.Popen]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = RESTART_DELAY
    restart_at: float | None = None

    def start(self) -> None:
        """Start (or restart) the process."""
        self.process = self.spawn()
        self.started_at = time.monotonic()
        self.restart_at = None


class Launcher:
    """Starts the children in order, restarts those that exit, and stops them all on the first signal."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self._wakeup_read, self._wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_read, False)
        os.set_blocking(self._wakeup_write, False)

    def install_signal_handlers(self) -> None:
        """Record stop signals, and wake the main loop on them and on SIGCHLD (a child exited)."""
        signal.set_wakeup_fd(self._wakeup_write, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a handler, so the wakeup fd gets a byte

    def _on_stop_signal(self, signum: int, frame) -> None:
        """Only remember the first signal: the main loop does the stopping, so nothing is raised here."""
        if self.stop_signal is None:
            self.stop_signal = signum

    def run(self) -> int:
        """Start everything, supervise until a signal arrives, then stop everything; the exit status."""
        self.install_signal_handlers()
        try:
            if not self._start_all():
                return 1
            if self.stop_signal is None and _json_logs():
                log("running")
            elif self.stop_signal is None:
                port, host = os.environ.get("PORT", "8000"), os.environ.get("HOST", "127.0.0.1")
                print(
                    f"\nPaper pipeline is running at http://{host}:{port}/ (WebSocket ws://{host}:{port}/ws/papers)\n"
                    "Create a user:  .venv/bin/python manage.py createsuperuser\n"
                    "Press Ctrl-C to stop.\n",
                    flush=True,
                )
            self._supervise()
            return 0
        finally:
            self.stop_all()
            for signum in STOP_SIGNALS:  # nothing left to stop: late duplicates must not kill the exiting launcher
                signal.signal(signum, signal.SIG_IGN)

    def _start_all(self) -> bool:
        """Start Redis, migrate, start the application processes; False if start-up failed."""
        var_dir = Path(os.environ["PAPERPIPELINE_VAR_DIR"])
        if not os.environ.get("REDIS_URL"):
            redis = self._embedded_redis(var_dir / "redis")
            if not self._start_child(redis):
                return False
            log(f"Started embedded redis-server at {redacted(os.environ['REDIS_URL'])}")
        if self.stop_signal is None and not self._migrate():
            return False
        commands = process_commands(
            port=os.environ.get("PORT", "8000"), host=os.environ.get("HOST", "127.0.0.1"),
            concurrency=os.environ.get("CELERY_CONCURRENCY", "2"),
        )
        for name, command in commands.items():
            if self.stop_signal is not None:
                break
            self._start_child(Child(name, lambda command=command: _spawn(command)))
        return True

    def _embedded_redis(self, workdir: Path) -> Child:
        """A child running redis-server with append-only persistence; a restart keeps its port and password."""

        def spawn() -> subprocess.Popen:
            url = os.environ.get("REDIS_URL")
            parts = urlsplit(url) if url else None
            process, os.environ["REDIS_URL"] = start_redis_server(
                workdir=workdir, port=parts.port if parts else None, password=parts.password if parts else None,
                appendonly=True,
            )
            return process

        return Child("redis", spawn)

    def _start_child(self, child: Child) -> bool:
        """Start a child and supervise it; if it cannot even start, say so and return False."""
        try:
            child.start()
        except Exception as exc:  # OSError, a redis-server that died or never answered, ...
            log(f"could not start {child.name}: {exc}")
            return False
        self.children.append(child)
        return True

    def _migrate(self) -> bool:
        """Apply migrations in a session of its own, stopping it if a signal arrives meanwhile."""
        process = _spawn([sys.executable, "manage.py", "migrate", "--noinput"])
        while process.poll() is None:
            if self.stop_signal is not None:
                _terminate(process, "migrate")
                return True
            self._sleep(1.0)
        if process.returncode != 0:
            log(f"migrate failed with status {process.returncode}; stopping.")
            return False
        return True

    def _supervise(self) -> None:
        """Until a stop signal: restart, with backoff, every child that exited."""
        while self.stop_signal is None:
            now = time.monotonic()
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    self._schedule_restart(child, now)
                elif child.process is None and child.restart_at is not None and child.restart_at <= now:
                    log(f"restarting {child.name}")
                    try:
                        child.start()
                    except Exception as exc:  # as in _start_child: keep supervising the others
                        log(f"could not restart {child.name}: {exc}")
                        child.started_at = now
                        self._schedule_restart(child, now)
            pending = [child.restart_at - now for child in self.children if child.restart_at is not None]
            self._sleep(max(0.0, min([1.0, *pending])))

    def _schedule_restart(self, child: Child, now: float) -> None:
        """Note that a child exited and when it will be started again."""
        if now - child.started_at >= STABLE_AFTER:
            child.delay = RESTART_DELAY  # it ran long enough: this is a new crash, not a crash loop
        if child.process is not None:
            _kill_session(child.process)  # what it left behind (e.g. a Celery pool) goes with it
            log(f"{child.name} exited with status {child.process.returncode}; restarting in {child.delay:g} s")
        else:
            log(f"retrying {child.name} in {child.delay:g} s")
        child.process, child.restart_at = None, now + child.delay
        child.delay = min(child.delay * 2, RESTART_DELAY_MAX)

    def _sleep(self, timeout: float) -> None:
        """Wait up to timeout for a signal (a stop request or a child's exit), then drain the wakeup pipe."""
        select.select([self._wakeup_read], [], [], timeout)
        try:
            while os.read(self._wakeup_read, 512):
                pass
        except BlockingIOError:
            pass

    def stop_all(self) -> None:
        """Stop the application processes, then Redis, which they need while stopping; safe to repeat."""
        apps = [child for child in self.children if child.name != "redis"]
        for group in (apps, [child for child in self.children if child.name == "redis"]):
            running = [child for child in group if child.process is not None]
            for child in running:
                if child.process.poll() is None:
                    log(f"stopping {child.name}")
                    child.process.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT
            for child in running:
                _terminate(child.process, child.name, deadline=deadline, asked=True)
                child.process = None
            for child in group:
                child.restart_at = None


def _spawn(command: list[str]) -> subprocess.Popen:
    """Start a command in a session of its own (Ctrl-C and group signals reach only the launcher, which stops
    its children in order), dying with the launcher should the launcher itself be killed."""
    return subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True, preexec_fn=die_with_parent)


def _terminate(process: subprocess.Popen, name: str, *, deadline: float | None = None, asked: bool = False) -> None:
    """SIGTERM a process (unless already asked), wait until deadline, then SIGKILL its whole session."""
    if not asked and process.poll() is None:
        process.terminate()
    deadline = deadline if deadline is not None else time.monotonic() + STOP_TIMEOUT
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within {STOP_TIMEOUT:g} s; killing it.")
        _kill_session(process)
        process.wait()
    _kill_session(process)
    log(f"{name} stopped (status {process.returncode})")


def _kill_session(process: subprocess.Popen) -> None:
    """SIGKILL whatever is left in the process group the child led (its pgid is its pid)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reset_metrics_dir(path: Path) -> None:
    """Create the processes' metrics directory, or empty it of a previous run's files (only those: it may be a
    directory of the operator's choosing)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def main() -> int:
    """Set up the environment the children share, then run the launcher."""
    var_dir = Path(os.environ.setdefault("PAPERPIPELINE_VAR_DIR", str(BASE_DIR / "var")))
    var_dir.mkdir(parents=True, exist_ok=True)
    # Every process keeps its metrics in files there, and a scrape of any Daphne adds them up (docs/operations.md).
    reset_metrics_dir(Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir / "metrics"))))
    # Plain HTTP only on a loopback HOST unless DJANGO_HTTPS says otherwise.
    prepare_https_setting(os.environ.get("HOST", "127.0.0.1"))
    return Launcher().run()


if __name__ == "__main__":
    sys.exit(main())
