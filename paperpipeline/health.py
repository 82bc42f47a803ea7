"""/healthz and /readyz, answered in front of Django by every web process (docs/operations.md).

- `/healthz`: the process is alive and its event loop answers; it checks nothing else, so a supervisor restarts
  the process only for its own faults.
- `/readyz`: the process can serve: the database answers, Redis answers, at least one Celery worker reported
  itself alive (paperpipeline.heartbeat), and this process's fan-out carries a message published on the bus
  (realtime.health). 200 when all pass, 503 otherwise; the body says which check failed and how.

Both are answered before Django's middleware (no session, no host check, no HTTPS redirect), so a load balancer
may probe by address over plain http, and they are cheap: one readiness check runs at a time per process, each
part bounded by HEALTH_CHECK_TIMEOUT, and its answer is reused for HEALTH_CACHE_SECONDS whoever asks. Nothing in
an answer names a host, a URL or a secret: a failed check says only the kind of error.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from realtime.health import fanout_round_trip

from . import heartbeat, redis_clients

logger = logging.getLogger(__name__)

PATHS = ("/healthz", "/readyz")


# --- the checks: each raises when its dependency does not answer ---

def _database_ping() -> None:
    """SELECT 1 on a connection of this thread, closed after (the check runs in a pool thread)."""
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


async def check_database() -> dict[str, Any]:
    await sync_to_async(_database_ping, thread_sensitive=False)()
    return {}


def _redis(url: str) -> aioredis.Redis:
    """A client for one check: a fresh connection, no retries, the check's timeout."""
    timeout = settings.HEALTH_CHECK_TIMEOUT
    return redis_clients.async_client(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                      retry=Retry(NoBackoff(), 0, supported_errors=()))


def check_redis(url: str) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A check that one Redis answers PING."""

    async def check() -> dict[str, Any]:
        async with _redis(url) as client:
            await client.ping()
        return {}

    return check


async def check_workers() -> dict[str, Any]:
    """At least one Celery worker's report is current (in the broker's Redis)."""
    async with _redis(settings.BROKER_REDIS_URL) as client:
        alive = await heartbeat.live_workers(client)
    if alive < 1:
        raise LookupError("no worker reported itself alive")
    return {"alive": alive}


async def check_fanout() -> dict[str, Any]:
    await fanout_round_trip()
    return {}


def checks() -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
    """The readiness checks by name; a separate Redis for the realtime bus gets a check of its own."""
    named = {"database": check_database, "redis": check_redis(settings.BROKER_REDIS_URL)}
    if settings.REALTIME_REDIS_URL != settings.BROKER_REDIS_URL:
        named["realtime_redis"] = check_redis(settings.REALTIME_REDIS_URL)
    named["workers"] = check_workers
    named["fanout"] = check_fanout
    return named


async def _run(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """One check's result: ok, how long it took, its details, or the kind of error (never its message, which
    may name a host)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.HEALTH_CHECK_TIMEOUT):
            details = await check()
        result = {"ok": True, **details}
    except TimeoutError:
        result = {"ok": False, "error": "timeout"}
    except Exception as exc:  # whatever a dependency raises, the answer is "not ready"
        result = {"ok": False, "error": type(exc).__name__}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


async def readiness() -> dict[str, Any]:
    """Run every check at once; the process is ready when all pass."""
    named = checks()
    results = await asyncio.gather(*(_run(check) for check in named.values()))
    report = dict(zip(named, results, strict=True))
    return {"status": "ready" if all(r["ok"] for r in results) else "unavailable", "checks": report}


class CachedReadiness:
    """The last readiness answer of this process, reused for HEALTH_CACHE_SECONDS; one check runs at a time."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = None
        self.at = 0.0
        self.running: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}

    async def get(self) -> dict[str, Any]:
        if self.answer is not None and time.monotonic() - self.at < settings.HEALTH_CACHE_SECONDS:
            return self.answer
        loop = asyncio.get_running_loop()
        task = self.running.get(loop)
        if task is None:
            task = self.running[loop] = loop.create_task(self._refresh(loop))
        return await asyncio.shield(task)  # a probe that hangs up does not cancel the others' check

    async def _refresh(self, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        try:
            answer = await readiness()
        finally:
            self.running.pop(loop, None)
        if self.answer is None or answer["status"] != self.answer["status"]:
            failing = sorted(name for name, result in answer["checks"].items() if not result["ok"])
            level = logging.INFO if answer["status"] == "ready" else logging.WARNING
            logger.log(level, "health.readiness_changed", extra={"status": answer["status"], "failing": failing})
        self.answer, self.at = answer, time.monotonic()
        return answer


_readiness = CachedReadiness()


# --- the ASGI side ---

async def _respond(send, status: int, body: dict[str, Any], *, head: bool = False) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def answer(scope: dict[str, Any], send) -> None:
    """Answer one health request."""
    method = scope.get("method", "GET")
    if method not in ("GET", "HEAD"):
        await _respond(send, 405, {"detail": "Method not allowed.", "code": "method_not_allowed"})
        return
    if scope["path"] == "/healthz":
        await _respond(send, 200, {"status": "alive"}, head=method == "HEAD")
        return
    report = await _readiness.get()
    await _respond(send, 200 if report["status"] == "ready" else 503, report, head=method == "HEAD")


def with_health_endpoints(application):
    """The HTTP application with /healthz and /readyz answered in front of it."""

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in PATHS:
            await answer(scope, send)
            return
        await application(scope, receive, send)

    return app
