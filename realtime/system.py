"""Measures the figures of a system_status event from the broker, Celery and the host."""

import os

from django.conf import settings

from papers import selectors

from .events import SystemStatusEvent


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
