"""Measures the figures of a system_status event from the broker, Celery and the host."""

import json
import os
from typing import Any

from django.conf import settings

from papers import selectors

from . import bus
from .events import SystemStatusEvent, encode

LATEST_KEY = "paperpipeline:system_status:latest"
FIGURES = ("queue_size", "active_workers", "processing_rate", "system_load")


def queue_size() -> int:
    """Tasks waiting in the broker's papers queue."""
    from paperpipeline.celery import app

    with app.connection_for_read() as connection:
        return connection.default_channel.client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)


def active_workers(timeout: float = 1.0) -> int:
    """Workers consuming the papers queue that answer a broadcast ping."""
    from paperpipeline.celery import app

    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    return sum(
        1 for queues in replies.values() if any(q.get("name") == settings.CELERY_TASK_DEFAULT_QUEUE for q in queues)
    )


def system_load() -> float:
    """One-minute load average per core, so 1.0 means every core is busy."""
    return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)


def system_status_measure() -> SystemStatusEvent:
    """Build a system_status event from live measurements."""
    return SystemStatusEvent(
        queue_size=queue_size(),
        active_workers=active_workers(),
        processing_rate=selectors.processing_rate_per_minute(),
        system_load=system_load(),
    )


def system_status_remember(payload: dict[str, Any]) -> None:
    """Keep the latest figures, so a page renders them at once rather than waiting for the next broadcast."""
    bus.remember(LATEST_KEY, encode({name: payload[name] for name in FIGURES}),
                 ttl=max(60.0, 12 * settings.SYSTEM_STATUS_INTERVAL))


def system_status_latest() -> dict[str, Any] | None:
    """The figures last broadcast (None when none is kept, or Redis cannot be reached)."""
    data = bus.recall(LATEST_KEY)
    try:
        figures = json.loads(data) if data else None
    except ValueError:
        return None
    return {name: figures.get(name) for name in FIGURES} if isinstance(figures, dict) else None
