"""system_status figures measured from the real broker, Celery and the database."""

from datetime import timedelta

import pytest

from paperpipeline.celery import app
from papers import selectors
from papers.models import Paper, PaperStatus
from realtime import system
from realtime.events import utc_now
from tests.schemas import assert_wire_event

pytestmark = pytest.mark.django_db


def test_queue_size_counts_waiting_tasks_in_the_broker(settings):
    settings.CELERY_TASK_DEFAULT_QUEUE = queue = "test-queue-size"  # a queue no worker consumes
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        client.lpush(queue, b"{}", b"{}", b"{}")
        try:
            assert system.queue_size() == 3
        finally:
            client.delete(queue)


def test_processing_rate_counts_papers_completed_in_the_window(user, text_upload, settings):
    settings.PROCESSING_RATE_WINDOW = timedelta(minutes=2)
    now = utc_now()
    for minutes_ago in (0.5, 1, 5):
        Paper.objects.create(owner=user, file=text_upload, status=PaperStatus.COMPLETED,
                             completed_at=now - timedelta(minutes=minutes_ago))
    assert selectors.processing_rate_per_minute() == 1.0  # two papers in two minutes


def test_measure_builds_a_valid_event_with_no_workers_running():
    event = system.system_status_measure().to_dict()
    assert_wire_event(event)
    assert event["active_workers"] == 0
