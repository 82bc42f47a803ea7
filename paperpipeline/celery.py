"""Celery application: pipeline tasks on queue "papers", periodic system tasks on queue "system"."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")

app = Celery("paperpipeline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def sweep_at_start(sender, **kwargs) -> None:
    """A worker just started, maybe after Redis lost its data: re-send lost queued papers now, not in a minute."""
    sender.app.send_task("papers.tasks.stalled_papers_sweep")  # routed to the system queue
