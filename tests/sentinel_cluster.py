"""A Redis master, a replica and three sentinels on free ports, from the redis-server binary the tests use."""

import contextlib
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from paperpipeline.redis_server import die_with_parent, free_port, redis_server_binary, wait_for_redis

MASTER_NAME = "paperpipeline"
QUORUM = 2
# Small, so a failover takes a second or two: the master counts as down after this many ms without an answer...
DOWN_AFTER_MS = 400
# ...and a failover that stalls is retried after this long.
FAILOVER_TIMEOUT_MS = 2000


@dataclass
class SentinelCluster:
    """Handles on the servers, and the URL every process of the project is given."""

    workdir: Path
    password: str
    sentinel_password: str
    servers: dict[int, subprocess.Popen] = field(default_factory=dict)  # by port: master and replica
    sentinels: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://:{self.password}@{hosts}/{MASTER_NAME}/0?sentinel_password={self.sentinel_password}"

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.sentinel_password, socket_timeout=1, decode_responses=True)

    def master_port(self) -> int:
        """The master's port as the first answering sentinel says."""
        for port in self.sentinels:
            with contextlib.suppress(redis.RedisError), contextlib.closing(self.sentinel(port)) as client:
                return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
        raise RuntimeError("no sentinel answered")

    def kill_master(self) -> int:
        """SIGKILL the current master (no shutdown, no last words to its clients); return its port."""
        port = self.master_port()
        self.servers[port].send_signal(signal.SIGKILL)
        self.servers[port].wait(timeout=10)
        return port

    def wait_for_failover(self, old_port: int, timeout: float = 30) -> int:
        """Block until every sentinel names a master other than old_port, and it answers as master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = set()
            for port in self.sentinels:
                with contextlib.suppress(redis.RedisError), contextlib.closing(self.sentinel(port)) as client:
                    named.add(int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
            if len(named) == 1 and old_port not in named:
                new_port = named.pop()
                with contextlib.closing(redis.Redis(port=new_port, password=self.password, socket_timeout=1)) as c:
                    with contextlib.suppress(redis.RedisError):
                        if c.info("replication")["role"] == "master":
                            return new_port
            time.sleep(0.05)  # sentinels announce nothing a test could await without subscribing to each
        raise AssertionError("the sentinels did not fail over in time")

    def stop(self) -> None:
        for process in [*self.sentinels.values(), *self.servers.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.sentinels.values(), *self.servers.values()]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _spawn(config: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [redis_server_binary(), str(config), *extra],
        stdout=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent,
    )


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _start_server(cluster: SentinelCluster, *, replica_of: int | None = None) -> int:
    port = free_port()
    lines = [
        f"port {port}", "bind 127.0.0.1", 'save ""', "appendonly no", f"dir {cluster.workdir}",
        f"logfile {cluster.workdir / f'redis-{port}.log'}",
        f"requirepass {cluster.password}", f"masterauth {cluster.password}",
    ]
    if replica_of:
        lines.append(f"replicaof 127.0.0.1 {replica_of}")
    cluster.servers[port] = _spawn(_write(cluster.workdir / f"redis-{port}.conf", lines))
    wait_for_redis(f"redis://:{cluster.password}@127.0.0.1:{port}/0", process=cluster.servers[port])
    return port


def _start_sentinel(cluster: SentinelCluster, master_port: int) -> int:
    port = free_port()
    lines = [
        f"port {port}", "bind 127.0.0.1", f"dir {cluster.workdir}",
        f"logfile {cluster.workdir / f'sentinel-{port}.log'}",
        f"requirepass {cluster.sentinel_password}",
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {QUORUM}",
        f"sentinel auth-pass {MASTER_NAME} {cluster.password}",
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {MASTER_NAME} 1",
    ]
    cluster.sentinels[port] = _spawn(_write(cluster.workdir / f"sentinel-{port}.conf", lines), "--sentinel")
    return port


def _wait_until_formed(cluster: SentinelCluster, timeout: float = 30) -> None:
    """Every sentinel knows the replica (in sync) and the two other sentinels: a failover can happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        formed = 0
        for port in cluster.sentinels:
            with contextlib.suppress(redis.RedisError), contextlib.closing(cluster.sentinel(port)) as client:
                replicas = client.sentinel_slaves(MASTER_NAME)
                others = client.sentinel_sentinels(MASTER_NAME)
                if any("s_down" not in r["flags"] and r.get("master-link-status") == "ok" for r in replicas) \
                        and len(others) == len(cluster.sentinels) - 1:
                    formed += 1
        if formed == len(cluster.sentinels):
            return
        time.sleep(0.1)  # discovery runs on the sentinels' own timers (hello every 2 s)
    raise AssertionError("the sentinels did not discover each other and the replica in time")


@contextlib.contextmanager
def sentinel_cluster(workdir: Path) -> Iterator[SentinelCluster]:
    """A master, one replica and three sentinels (quorum 2), all password-protected, stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)  # the configuration files hold the passwords
    cluster = SentinelCluster(workdir, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    try:
        master = _start_server(cluster)
        _start_server(cluster, replica_of=master)
        for _ in range(3):
            _start_sentinel(cluster, master)
        _wait_until_formed(cluster)
        yield cluster
    finally:
        cluster.stop()
