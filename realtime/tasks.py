"""Periodic realtime tasks, run by Celery beat on the "system" queue."""

from celery import shared_task

from .broadcast import broadcast_event
from .system import system_status_measure, system_status_remember


@shared_task(name="realtime.tasks.system_status_broadcast", ignore_result=True)
def system_status_broadcast() -> None:
    """Measure and broadcast a system_status event to topic "system", and keep its figures for pages."""
    payload = system_status_measure().to_dict()
    system_status_remember(payload)
    broadcast_event(payload)
