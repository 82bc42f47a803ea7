"""Celery tasks of the papers app: each takes an id and delegates to a service."""

import logging
import resource

from billiard.process import current_process
from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded
from celery.signals import worker_process_init
from django.conf import settings

from . import services

logger = logging.getLogger(__name__)


@worker_process_init.connect
def limit_pool_child_memory(**_kwargs) -> None:
    """Cap each prefork pool child's address space: a runaway allocation raises MemoryError in the task.

    Only pool children, which parse uploads and are replaced when they die; the worker's main process (and a
    solo worker running system tasks in it) keeps the limit it has.
    """
    limit_mb = settings.PAPER_WORKER_MAX_MEMORY_MB
    if limit_mb <= 0 or current_process().name == "MainProcess":
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = limit_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    logger.info("pool child %s: address space limited to %d MiB", current_process().name, limit // (1024 * 1024))


class PaperTask(Task):
    """The pipeline task: a hard time limit, which kills the pool child, still fails the paper."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Fail the paper after a hard time limit; the worker's main process calls this once the child is killed."""
        if isinstance(exc, TimeLimitExceeded) and args:
            services.paper_time_limit_fail(paper_id=args[0], task_id=task_id, seconds=settings.PAPER_TASK_TIME_LIMIT)


@shared_task(
    name="papers.tasks.process_paper", bind=True, base=PaperTask, acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=settings.PAPER_TASK_SOFT_TIME_LIMIT, time_limit=settings.PAPER_TASK_TIME_LIMIT,
)
def process_paper(self, paper_id: str) -> None:
    """Run the pipeline for one paper; every failure inside is reported as an ERROR event by the service."""
    services.paper_process(paper_id=paper_id, task_id=self.request.id)


@shared_task(name="papers.tasks.event_log_prune", ignore_result=True)
def event_log_prune() -> int:
    """Apply the event-log retention (beat runs it hourly on the system queue)."""
    return services.paper_events_prune()


@shared_task(name="papers.tasks.stalled_papers_sweep", ignore_result=True)
def stalled_papers_sweep() -> int:
    """Fail stalled papers and re-send lost queued ones (beat runs it every minute, and each worker at start)."""
    return services.paper_stalled_fail() + services.paper_queued_resend()
