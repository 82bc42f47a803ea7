"""Celery application: pipeline tasks on queue "papers", periodic system tasks on queue "system"."""

import logging
import os
import sys
import time

import structlog
from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun, worker_ready
from celery.worker.consumer import Consumer
from kombu.common import ignore_errors

from . import heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")

app = Celery("paperpipeline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
heartbeat.install(app)

logger = logging.getLogger("paperpipeline.tasks")
_started: dict[str, float] = {}  # task id -> monotonic start, in the process running the task


@setup_logging.connect
def use_project_logging(loglevel=None, **kwargs) -> None:
    """Workers and beat log like every other process (settings.LOGGING, LOG_FORMAT), at the level of their -l."""
    from django.conf import settings

    from .logs import configure

    configure(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
    if settings.LOG_FORMAT == "json":
        # Celery's signal handlers write their notices ("worker: Warm shutdown") with a raw write, never through
        # logging (which a signal handler must not enter); the same raw write, as a JSON line.
        import celery.apps.worker

        celery.apps.worker.safe_say = _say_as_json_line


def _say_as_json_line(msg: str, f=sys.__stderr__) -> None:
    """celery.apps.worker.safe_say, writing one JSON line."""
    from .logs import json_line

    try:
        os.write(f.fileno(), (json_line(msg.strip(), logger="celery.worker", level="warning") + "\n").encode())
    except (OSError, ValueError):
        pass  # a notice lost must never stop the shutdown that printed it


class BrokerLossConsumer(Consumer):
    """Celery's consumer, surviving the loss of the broker while an acks_late task runs (a Redis restart, a
    Sentinel failover); settings.CELERY_WORKER_CONSUMER names it.

    On a lost connection Celery 5.7 first collects it, which detaches its kombu transport, and then closes it.
    With a task still running, the Redis transport then needs the detached transport twice, and its
    AttributeError, which nothing catches, stops the worker: in the close, to requeue the unacknowledged message,
    and when the task ends, to acknowledge it on the lost connection's channel. So: close first, while the
    transport is attached (kombu's requeue fails on a lost Redis and the message stays unacknowledged in Redis),
    and attach it again after, so the acknowledgement connects afresh (to the new master) and removes it.
    """

    def on_connection_error_after_connected(self, exc):
        lost = self.connection
        transport = lost.transport if lost is not None else None
        if lost is not None:
            ignore_errors(lost, lost.close)
        super().on_connection_error_after_connected(exc)
        if transport is not None:
            transport.client = lost


@worker_ready.connect
def sweep_at_start(sender, **kwargs) -> None:
    """A worker just started, maybe after Redis lost its data: re-send lost queued papers now, not in a minute."""
    sender.app.send_task("papers.tasks.stalled_papers_sweep")  # routed to the system queue


@task_prerun.connect
def task_started(task_id=None, task=None, args=None, kwargs=None, **_) -> None:
    """Log the start, and tag every line the task logs with its id (and its paper's, for the pipeline task)."""
    fields = {"task_id": task_id, "task": task.name}
    paper_id = (kwargs or {}).get("paper_id")
    if paper_id is None and args and task.name == "papers.tasks.process_paper":
        paper_id = args[0]
    if paper_id is not None:
        fields["paper_id"] = str(paper_id)
    structlog.contextvars.bind_contextvars(**fields)
    _started[task_id] = time.monotonic()
    logger.info("task.start")


@task_postrun.connect
def task_ended(task_id=None, state=None, **_) -> None:
    """Log the end with the task's state and duration, then drop the task's tags."""
    started = _started.pop(task_id, None)
    duration_ms = round((time.monotonic() - started) * 1000, 1) if started is not None else None
    logger.info("task.end", extra={"state": state, "duration_ms": duration_ms})
    structlog.contextvars.clear_contextvars()
