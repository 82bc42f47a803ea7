"""/metrics: the Prometheus metrics of every process of this host, answered in front of Django by every web
process (docs/operations.md, "Metrics").

Who may scrape:
- a request with `Authorization: Bearer <METRICS_TOKEN>` (when METRICS_TOKEN is set), from anywhere;
- otherwise only a direct connection from this host's loopback address: one that came through a proxy (it
  carries X-Forwarded-For, X-Real-IP or Forwarded) is not taken as local;
- anyone else: 401 with a token configured (a wrong token always gets 401), 403 without one.
Like /healthz it is answered before Django's middleware (no host check, no HTTPS redirect, no session), so
Prometheus scrapes a process by its address.

A scrape adds up every process's values (paperpipeline.metrics, multiprocess mode) and reads a few figures fresh:
papers by status (database), broker queue depth and workers alive (Redis), each bounded by HEALTH_CHECK_TIMEOUT;
a source that does not answer is left out and `paperpipeline_metrics_source_up` says so.
"""

import asyncio
import glob
import hmac
import ipaddress
import json
import os
import re
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from papers import selectors

from . import heartbeat, metrics, redis_clients

PATH = "/metrics"
PROXY_HEADERS = (b"x-forwarded-for", b"x-real-ip", b"forwarded")


# --- who may scrape ---

def _is_loopback(address: str | None) -> bool:
    """Whether a peer address is this host's loopback (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False  # no address (a Unix socket, which a local proxy may front), or not an IP
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _bearer_matches(value: bytes, token: str) -> bool:
    """Whether an Authorization header carries exactly the bearer token (compared in constant time)."""
    scheme, _, presented = value.decode("latin-1").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def refusal(scope: dict[str, Any]) -> int | None:
    """None when the request may scrape; else the status to refuse it with (401 or 403)."""
    token = settings.METRICS_TOKEN
    authorization, proxied = None, False
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            authorization = value
        elif name in PROXY_HEADERS:
            proxied = True
    if authorization is not None:  # credentials presented must be right, wherever they come from
        return None if token and _bearer_matches(authorization, token) else 401
    if not proxied and _is_loopback((scope.get("client") or [None])[0]):
        return None
    return 401 if token else 403


# --- what a scrape reads fresh ---

def _paper_counts() -> dict[str, int]:
    """Papers by status, on a connection of this pool thread, closed after."""
    try:
        return selectors.paper_counts_by_status()
    finally:
        connections["default"].close()


def queue_names() -> list[str]:
    """The broker queues the project's tasks go to."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed})


async def _broker_figures() -> dict[str, Any]:
    """Queue depths and workers alive, from the broker's Redis on one short-lived connection."""
    timeout = settings.HEALTH_CHECK_TIMEOUT
    client = redis_clients.async_client(settings.BROKER_REDIS_URL, socket_timeout=timeout,
                                        socket_connect_timeout=timeout,
                                        retry=Retry(NoBackoff(), 0, supported_errors=()))
    async with client:
        depths = {name: int(await client.llen(name)) for name in queue_names()}
        return {"queues": depths, "workers": await heartbeat.live_workers(client)}


async def _bounded(source) -> Any:
    """A source's figures, or None when it fails or takes longer than HEALTH_CHECK_TIMEOUT."""
    try:
        async with asyncio.timeout(settings.HEALTH_CHECK_TIMEOUT):
            return await source
    except Exception:  # a scrape still answers; paperpipeline_metrics_source_up says what is missing
        return None


class FreshFigures:
    """The figures read for one scrape, as metric families."""

    def __init__(self, papers: dict[str, int] | None, broker: dict[str, Any] | None):
        self.papers, self.broker = papers, broker

    def collect(self):
        up = GaugeMetricFamily("paperpipeline_metrics_source_up", "Whether a source of this scrape's fresh figures "
                               "answered (database: papers by status; broker: queue depth, workers alive).",
                               labels=["source"])
        up.add_metric(["database"], float(self.papers is not None))
        up.add_metric(["broker"], float(self.broker is not None))
        yield up
        if self.papers is not None:
            papers = GaugeMetricFamily("paperpipeline_papers", "Papers by status.", labels=["status"])
            for status, count in self.papers.items():
                papers.add_metric([status], count)
            yield papers
        if self.broker is not None:
            depth = GaugeMetricFamily("paperpipeline_queue_depth", "Tasks waiting in a broker queue (those a worker "
                                      "reserved not counted).", labels=["queue"])
            for queue, count in self.broker["queues"].items():
                depth.add_metric([queue], count)
            yield depth
            yield GaugeMetricFamily("paperpipeline_workers_alive", "Celery workers whose heartbeat is current "
                                    "(paperpipeline.heartbeat).", value=self.broker["workers"])


class _Collected:
    """Another registry's metrics, in this scrape's registry (the process's own, without multiprocess mode)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


# --- the multiprocess directory ---

_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db$")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges of processes of this host that ended without saying so (killed, crashed), so open
    connections and subscriptions count only processes alive. Counters and histograms of ended processes stay."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_FILE.search(os.path.basename(name))
        if match and not _process_exists(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), path)


def exposition(fresh: FreshFigures) -> bytes:
    """The text every process's metrics and this scrape's fresh figures make (reads files: run in a thread)."""
    registry = CollectorRegistry(auto_describe=False)
    if metrics.MULTIPROCESS_DIR:
        forget_dead_processes(metrics.MULTIPROCESS_DIR)
        multiprocess.MultiProcessCollector(registry, path=metrics.MULTIPROCESS_DIR)
    else:
        registry.register(_Collected(REGISTRY))  # one process: its own values, process and GC metrics included
    registry.register(fresh)
    return generate_latest(registry)


async def scrape() -> bytes:
    """Read the fresh figures at once, then render everything."""
    papers, broker = await asyncio.gather(
        _bounded(sync_to_async(_paper_counts, thread_sensitive=False)()), _bounded(_broker_figures()),
    )
    return await asyncio.to_thread(exposition, FreshFigures(papers, broker))


# --- the ASGI side ---

REFUSALS = {
    401: {"detail": "Metrics need Authorization: Bearer <METRICS_TOKEN>.", "code": "not_authenticated"},
    403: {"detail": "Metrics are served only to this host, or with a token (METRICS_TOKEN).",
          "code": "permission_denied"},
}


async def _respond(send, status: int, body: bytes, content_type: bytes, extra=()) -> None:
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", content_type), (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"), (b"content-length", str(len(body)).encode()), *extra],
    })
    await send({"type": "http.response.body", "body": body})


async def answer(scope: dict[str, Any], send) -> None:
    """Answer one /metrics request."""
    method = scope.get("method", "GET")
    if method not in ("GET", "HEAD"):
        body = json.dumps({"detail": "Method not allowed.", "code": "method_not_allowed"}).encode()
        await _respond(send, 405, body, b"application/json", [(b"allow", b"GET, HEAD")])
        return
    status = refusal(scope)
    if status is not None:
        challenge = [(b"www-authenticate", b'Bearer realm="metrics"')] if status == 401 else []
        await _respond(send, status, json.dumps(REFUSALS[status]).encode(), b"application/json", challenge)
        return
    body = await scrape()
    await _respond(send, 200, b"" if method == "HEAD" else body, CONTENT_TYPE_LATEST.encode())


def with_metrics_endpoint(application):
    """The HTTP application with /metrics answered in front of it."""

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == PATH:
            await answer(scope, send)
            return
        await application(scope, receive, send)

    return app
