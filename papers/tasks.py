"""Celery tasks of the papers app: each takes an id and delegates to a service."""

from celery import shared_task

from . import services


@shared_task(name="papers.tasks.process_paper", bind=True, acks_late=True, reject_on_worker_lost=True)
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
