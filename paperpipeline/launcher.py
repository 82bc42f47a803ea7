"""`make run`: Redis (unless REDIS_URL), migrations, Daphne, Celery workers and beat; Ctrl-C stops them all."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from .security import prepare_https_setting

BASE_DIR = Path(__file__).resolve().parent.parent


def process_commands(*, port: str, host: str = "127.0.0.1", concurrency: str = "2") -> dict[str, list[str]]:
    """The long-running processes of the system, by name (end-to-end tests start the same ones)."""
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "paperpipeline"]
    return {
        "daphne": [python, "-m", "realtime.server", "-b", host, "-p", port, "paperpipeline.asgi:application"],
        "worker": [*celery, "worker", "-Q", "papers", "-n", f"papers-{port}@%h", "-c", concurrency, "-l", "INFO"],
        # System tasks get their own worker so a busy pipeline never delays system_status.
        "system-worker": [*celery, "worker", "-Q", "system", "-n", f"system-{port}@%h", "-P", "solo", "-l", "WARNING"],
        "beat": [*celery, "beat", "-l", "WARNING"],  # schedule file: CELERY_BEAT_SCHEDULE_FILENAME
    }


def main() -> int:
    """Start everything, wait until one process exits or a signal arrives, then stop all of them."""
    var_dir = Path(os.environ.setdefault("PAPERPIPELINE_VAR_DIR", str(BASE_DIR / "var")))
    var_dir.mkdir(parents=True, exist_ok=True)
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    prepare_https_setting(host)  # plain HTTP only on loopback unless DJANGO_HTTPS says otherwise
    children: list[tuple[str, subprocess.Popen]] = []

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if not os.environ.get("REDIS_URL"):
            from .redis_server import start_redis_server

            redis_process, os.environ["REDIS_URL"] = start_redis_server(workdir=var_dir / "redis")
            children.append(("redis", redis_process))
            print(f"Started embedded redis-server at {os.environ['REDIS_URL']}", flush=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, check=True)
        commands = process_commands(port=port, host=host, concurrency=os.environ.get("CELERY_CONCURRENCY", "2"))
        for name, command in commands.items():
            # A session of their own: Ctrl-C reaches only this launcher, which stops them in order.
            children.append((name, subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)))
        print(
            f"\nPaper pipeline is running at http://{host}:{port}/ (WebSocket ws://{host}:{port}/ws/papers)\n"
            "Create a user:  .venv/bin/python manage.py createsuperuser\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        _wait_for_first_exit(children)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(children)


def _wait_for_first_exit(children: list[tuple[str, subprocess.Popen]]) -> None:
    """Return when any child exits (a crash takes the whole system down rather than leaving it half up)."""
    pid, status = os.wait()
    name = next((n for n, p in children if p.pid == pid), str(pid))
    print(f"{name} exited with status {os.waitstatus_to_exitcode(status)}; stopping everything.", flush=True)
    for _, process in children:
        if process.pid == pid:
            process.returncode = os.waitstatus_to_exitcode(status)


def _stop_all(children: list[tuple[str, subprocess.Popen]]) -> None:
    """SIGTERM the application processes, wait for them, then stop Redis, which they need while stopping."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    apps = [(name, p) for name, p in children if name != "redis"]
    for group in (apps, [(name, p) for name, p in children if name == "redis"]):
        for _, process in group:
            if process.poll() is None:
                process.terminate()
        for name, process in group:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing it.", flush=True)
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.exit(main())
