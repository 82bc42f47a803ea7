"""Health on the real system: /readyz turns 503 naming Redis when the test's Redis stops, and 200 once it is back."""

import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

from paperpipeline.redis_server import start_redis_server
from tests.e2e.conftest import running_system

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHECKS = {"database", "redis", "workers", "fanout"}


def readyz(system) -> requests.Response:
    return requests.get(f"{system.base_url}/readyz", timeout=10)


def wait_for_readiness(system, status: int, timeout: float = 60, workers: int = 0) -> requests.Response:
    """Poll /readyz until it answers with status (and, when asked, counts that many live workers): readiness is a
    state to look at, not an event to await; the two workers report themselves independently."""
    deadline = time.monotonic() + timeout
    while True:
        response = readyz(system)
        alive = response.json()["checks"]["workers"].get("alive", 0) if response.status_code == 200 else 0
        if (response.status_code == status and alive >= workers) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_readyz_follows_redis_away_and_back(private_redis, tmp_path):
    beat_file = tmp_path / "alive" / "%n.alive"
    with running_system(
        redis_url=private_redis["url"], name="health-", HEALTH_CACHE_SECONDS="1", WORKER_HEARTBEAT_INTERVAL="1",
        WORKER_HEARTBEAT_FILE=str(beat_file),
    ) as system:
        ready = wait_for_readiness(system, 200, workers=2)
        assert ready.status_code == 200, (ready.text, system.log_tails())
        body = ready.json()
        assert body["status"] == "ready" and set(body["checks"]) == CHECKS, body
        assert all(check["ok"] for check in body["checks"].values()), body
        assert body["checks"]["workers"]["alive"] == 2, body  # the pipeline worker and the system worker
        assert ready.headers["Cache-Control"] == "no-store"

        # Workers report themselves alive in their file too; a supervisor's check says so.
        port = urlsplit(system.base_url).port
        files = sorted((tmp_path / "alive").glob("*.alive"))
        assert [f.name for f in files] == [f"papers-{port}.alive", f"system-{port}.alive"], files
        check = [sys.executable, "-m", "paperpipeline.heartbeat", str(files[0]), "--max-age", "10"]
        assert subprocess.run(check, capture_output=True).returncode == 0

        # Any Host and plain http: a load balancer probes by address (Django's host check is not in the way).
        alive = requests.get(f"{system.base_url}/healthz", headers={"Host": "10.1.2.3:9"}, timeout=10)
        assert (alive.status_code, alive.json()) == (200, {"status": "alive"})

        # Redis goes away: not ready, the redis check says why, and nothing names the server or its password.
        address = urlsplit(private_redis["url"])
        private_redis["process"].terminate()
        private_redis["process"].wait(timeout=10)
        down = wait_for_readiness(system, 503)
        assert down.status_code == 503, down.text
        body = down.json()
        print("readyz with Redis down:", json.dumps(body))
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"], body
        assert body["checks"]["database"]["ok"] is True, body
        for secret in (address.password, str(address.port), "redis://"):
            assert secret not in down.text
        assert requests.get(f"{system.base_url}/healthz", timeout=10).status_code == 200  # the process lives

        # Redis comes back on the same address: ready again, the fan-out resubscribed, the workers reported.
        private_redis["process"], _ = start_redis_server(
            workdir=private_redis["workdir"], port=address.port, password=address.password
        )
        back = wait_for_readiness(system, 200)
        assert back.status_code == 200, (back.text, system.log_tails())
        assert all(check["ok"] for check in back.json()["checks"].values())

        crashed = {name: p.returncode for name, p in system.processes.items() if p.poll() is not None}
        assert crashed == {}, system.log_tails()

    # A worker that stopped withdrew its file: the supervisor's check fails.
    assert list((tmp_path / "alive").glob("*.alive")) == []
    assert subprocess.run(check, capture_output=True).returncode == 1
