"""The embedded redis-server: a random password per start, kept off the process list; append-only persistence."""

import socket
from urllib.parse import urlsplit

import psutil
import pytest
import redis

from paperpipeline.redis_server import redacted, start_redis_server


@pytest.fixture
def servers():
    started = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def unauthenticated(port: int, command: bytes) -> bytes:
    """What Redis answers a client that never authenticated, as any local process could be."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(200)


def test_each_start_gets_a_random_password_no_client_gets_in_without(tmp_path, servers):
    first, first_url = start_redis_server(workdir=tmp_path / "a")
    second, second_url = start_redis_server(workdir=tmp_path / "b")
    servers += [first, second]
    a, b = urlsplit(first_url), urlsplit(second_url)
    assert a.hostname == "127.0.0.1" and len(a.password) >= 32 and a.password != b.password
    assert unauthenticated(a.port, b"PUBLISH paperpipeline:user.1 forged\r\n").startswith(b"-NOAUTH")
    assert unauthenticated(a.port, b"AUTH wrong\r\n").startswith(b"-WRONGPASS")
    assert redis.Redis.from_url(first_url).ping()
    assert a.password not in " ".join(psutil.Process(first.pid).cmdline())
    assert redacted(first_url) == f"redis://:***@127.0.0.1:{a.port}/0"


def test_with_appendonly_data_survives_a_restart_on_the_same_port_and_password(tmp_path, servers):
    process, url = start_redis_server(workdir=tmp_path, appendonly=True)
    redis.Redis.from_url(url).rpush("papers", b"a queued task")
    process.terminate()
    process.wait(timeout=10)
    address = urlsplit(url)
    process, again = start_redis_server(workdir=tmp_path, port=address.port, password=address.password, appendonly=True)
    servers.append(process)
    assert again == url
    assert redis.Redis.from_url(url).lrange("papers", 0, -1) == [b"a queued task"]
