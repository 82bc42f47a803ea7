"""Queued papers whose task was lost: the sweep re-sends them, reprocess may act on them, nothing runs twice."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from paperpipeline.celery import app
from papers import services, tasks
from papers.models import Paper, PaperEvent
from realtime.events import utc_now
from tests.conftest import SAMPLE_TEXT

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The pipeline tasks handed to the broker, as apply_async keyword arguments."""
    calls: list[dict] = []
    monkeypatch.setattr("papers.tasks.process_paper.apply_async", lambda **kw: calls.append(kw))
    return calls


@pytest.fixture
def broker_queue(settings):
    """A pipeline queue of this test's own on the session's real Redis broker, removed afterwards."""
    settings.CELERY_TASK_DEFAULT_QUEUE = name = f"papers-test-{uuid.uuid4().hex}"
    yield name
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(name)


@pytest.fixture
def queued(user, sent, django_capture_on_commit_callbacks):
    """Make a queued paper, its task sent once the queued state commits; age= how long it has waited."""

    def make(*, age: timedelta = timedelta(0)) -> Paper:
        paper = Paper(owner=user, title="t")
        paper.file.save("p.txt", ContentFile(SAMPLE_TEXT.encode()), save=False)
        paper.save()
        with django_capture_on_commit_callbacks(execute=True):
            services.paper_enqueue(paper=paper)
        Paper.objects.filter(pk=paper.pk).update(updated_at=utc_now() - age)
        return Paper.objects.get(pk=paper.pk)

    return make


def test_the_sweep_resends_papers_queued_too_long_under_a_new_task_id(
    queued, sent, broker_queue, settings, django_capture_on_commit_callbacks
):
    settings.PAPER_QUEUED_RESEND_AFTER = timedelta(minutes=2)
    lost, recent = queued(age=timedelta(minutes=3)), queued(age=timedelta(seconds=30))
    events_before = PaperEvent.objects.filter(paper=lost).count()
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.stalled_papers_sweep() == 1
    lost.refresh_from_db()
    assert lost.status == "queued" and sent == [{"args": [str(lost.pk)], "task_id": lost.task_id, "retry": False}]
    assert Paper.objects.get(pk=recent.pk).updated_at == recent.updated_at  # left alone
    assert PaperEvent.objects.filter(paper=lost).count() == events_before  # still queued: no event to send

    # The new task runs once; the old one, should it turn up after all, does nothing.
    old_task = Paper.objects.filter(pk=lost.pk).values_list("task_id", flat=True).get()
    assert old_task == lost.task_id
    services.paper_process(paper_id=lost.pk, task_id=lost.task_id)
    services.paper_process(paper_id=lost.pk, task_id=str(uuid.uuid4()))
    lost.refresh_from_db()
    assert (lost.status, lost.attempts) == ("completed", 1)
    statuses = [e.payload["new_status"] for e in PaperEvent.objects.filter(paper=lost, event_type="status_changed")]
    assert statuses == ["queued", "processing", "completed"]


def test_the_old_task_of_a_resent_paper_is_a_no_op(queued, sent, broker_queue, settings):
    settings.PAPER_QUEUED_RESEND_AFTER = timedelta(minutes=2)
    paper = queued(age=timedelta(minutes=3))
    old_task = paper.task_id
    assert services.paper_queued_resend() == 1
    services.paper_process(paper_id=paper.pk, task_id=old_task)
    paper.refresh_from_db()
    assert (paper.status, paper.attempts) == ("queued", 0) and paper.task_id != old_task


def test_nothing_is_resent_while_pipeline_tasks_wait_in_the_broker(queued, sent, broker_queue, settings):
    settings.PAPER_QUEUED_RESEND_AFTER = timedelta(minutes=2)
    paper = queued(age=timedelta(minutes=3))
    with app.connection_for_write() as connection:
        connection.SimpleQueue(broker_queue).put({"a task": "still waiting"})
    assert services.paper_queued_resend() == 0
    assert Paper.objects.get(pk=paper.pk).task_id == paper.task_id


def test_reprocess_acts_on_a_paper_queued_too_long_only(queued, sent, settings, django_capture_on_commit_callbacks):
    settings.PAPER_QUEUED_RESEND_AFTER = timedelta(minutes=2)
    fresh, stale = queued(age=timedelta(seconds=30)), queued(age=timedelta(minutes=3))
    with pytest.raises(ValidationError) as refused:
        services.paper_reprocess(paper=fresh)
    assert refused.value.code == "already_active"

    with django_capture_on_commit_callbacks(execute=True):
        again = services.paper_reprocess(paper=stale)
    assert again.status == "queued" and again.task_id != stale.task_id
    assert sent[-1]["task_id"] == again.task_id

    services._paper_start(paper_id=fresh.pk, task_id=fresh.task_id)
    Paper.objects.filter(pk=fresh.pk).update(updated_at=utc_now() - timedelta(minutes=3))
    with pytest.raises(ValidationError):  # processing, however long, is not "queued too long"
        services.paper_reprocess(paper=Paper.objects.get(pk=fresh.pk))
