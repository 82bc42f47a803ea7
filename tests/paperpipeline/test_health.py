"""/healthz and /readyz in front of Django: answers, status codes, what a failure says, and the shared cache."""

import asyncio
import json
import os
import time

import pytest
import redis
from channels.testing import HttpCommunicator

from paperpipeline import health, heartbeat
from realtime import bus
from realtime.fanout import aclose_fanout


async def never_reached(scope, receive, send):
    raise AssertionError("the health endpoints are answered before Django")


APP = health.with_health_endpoints(never_reached)


async def get(path: str, method: str = "GET", host: bytes = b"testserver") -> tuple[int, dict, dict]:
    response = await HttpCommunicator(APP, method, path, headers=[(b"host", host)]).get_response(timeout=10)
    headers = {k.decode(): v.decode() for k, v in response["headers"]}
    return response["status"], headers, json.loads(response["body"]) if response["body"] else {}


@pytest.fixture
def fresh_readiness(monkeypatch):
    monkeypatch.setattr(health, "_readiness", health.CachedReadiness())


@pytest.fixture
def a_live_worker(settings):
    """A worker's report in the session's Redis, as the heartbeat step writes it."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.eval(heartbeat._REPORT, 1, heartbeat.workers_key(), "unit@test", 30)
    yield
    client.zrem(heartbeat.workers_key(), "unit@test")
    client.close()


async def test_healthz_answers_any_host_without_touching_anything():
    status, headers, body = await get("/healthz", host=b"10.0.0.9:8000")
    assert (status, body) == (200, {"status": "alive"})
    assert headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
    assert (await get("/healthz", "POST"))[0] == 405


@pytest.mark.django_db(transaction=True)
async def test_readyz_on_real_database_redis_and_fanout(fresh_readiness, a_live_worker):
    try:
        status, _, body = await get("/readyz")
    finally:
        await aclose_fanout()
        await bus.aclose()
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "workers", "fanout"}
    assert all(check["ok"] for check in body["checks"].values()), body
    assert body["checks"]["workers"]["alive"] >= 1


async def test_a_failing_check_is_not_ready_and_names_only_its_kind(fresh_readiness, monkeypatch):
    async def passes():
        return {}

    async def refuses():
        raise ConnectionError("Error 111 connecting to redis://:secret@10.1.1.1:6379")

    monkeypatch.setattr(health, "checks", lambda: {"database": passes, "redis": refuses})
    status, _, body = await get("/readyz")
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError", "ms": body["checks"]["redis"]["ms"]}
    assert "secret" not in json.dumps(body) and "10.1.1.1" not in json.dumps(body)


async def test_a_check_that_hangs_fails_after_the_timeout(fresh_readiness, monkeypatch, settings):
    settings.HEALTH_CHECK_TIMEOUT = 0.2

    async def hangs():
        await asyncio.sleep(60)

    monkeypatch.setattr(health, "checks", lambda: {"database": hangs})
    started = time.monotonic()
    status, _, body = await get("/readyz")
    assert status == 503 and body["checks"]["database"]["error"] == "timeout"
    assert time.monotonic() - started < 5


async def test_concurrent_probes_share_one_check_and_its_answer_is_reused(fresh_readiness, monkeypatch, settings):
    settings.HEALTH_CACHE_SECONDS = 0.3
    runs = []

    async def counted():
        runs.append(1)
        await asyncio.sleep(0.05)
        return {}

    monkeypatch.setattr(health, "checks", lambda: {"database": counted})
    answers = await asyncio.gather(*(get("/readyz") for _ in range(20)))
    assert {status for status, _, _ in answers} == {200} and len(runs) == 1
    await get("/readyz")
    assert len(runs) == 1  # within HEALTH_CACHE_SECONDS
    await asyncio.sleep(0.35)
    await get("/readyz")
    assert len(runs) == 2


async def test_workers_whose_reports_expired_do_not_count(settings):
    settings.REALTIME_BUS_PREFIX = "health-test-expiry"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.eval(heartbeat._REPORT, 1, heartbeat.workers_key(), "gone@test", 1)
        assert (await health.check_workers())["alive"] == 1
        client.zadd(heartbeat.workers_key(), {"gone@test": 1})  # its report expired long ago
        with pytest.raises(LookupError):
            await health.check_workers()
    finally:
        client.delete(heartbeat.workers_key())
        client.close()


def test_the_supervisors_check_of_a_heartbeat_file(tmp_path):
    beat = tmp_path / "worker.alive"
    assert heartbeat.main([str(beat)]) == 1  # no file: no worker
    beat.touch()
    assert heartbeat.main([str(beat), "--max-age", "10"]) == 0
    stale = time.time() - 60
    os.utime(beat, (stale, stale))
    assert heartbeat.main([str(beat), "--max-age", "10"]) == 1
