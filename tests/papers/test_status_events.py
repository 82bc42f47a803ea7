"""The outbox: every status change, from anywhere, yields exactly one status_changed event after commit."""

import pytest
from django.db import transaction

from papers.models import Paper, PaperEvent, PaperStatus
from tests.schemas import assert_wire_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper(user, text_upload):
    return Paper.objects.create(owner=user, title="A paper", file=text_upload)


def status_events(paper):
    return list(PaperEvent.objects.filter(paper=paper, event_type="status_changed").order_by("seq"))


def test_creating_a_paper_is_not_a_status_change(paper):
    assert status_events(paper) == []


def test_plain_save_in_a_shell_logs_one_event_and_broadcasts_after_commit(paper, django_capture_on_commit_callbacks):
    paper.status = PaperStatus.PROCESSING
    with django_capture_on_commit_callbacks() as callbacks:
        paper.save()
    [event] = status_events(paper)
    assert event.seq == 1
    assert event.payload["old_status"] == "uploaded"
    assert event.payload["new_status"] == "processing"
    assert event.payload["message"] == "Processing started"
    assert_wire_event(event.payload)
    assert len(callbacks) == 1


def test_save_without_status_change_logs_nothing(paper):
    paper.title = "Renamed"
    paper.save()
    assert status_events(paper) == []


def test_stale_instance_compares_against_the_stored_status(paper):
    stale = Paper.objects.get(pk=paper.pk)
    paper.status = PaperStatus.QUEUED
    paper.save()
    stale.status = PaperStatus.PROCESSING
    stale.save()
    events = status_events(paper)
    assert [(e.payload["old_status"], e.payload["new_status"]) for e in events] == [
        ("uploaded", "queued"),
        ("queued", "processing"),
    ]
    assert [e.seq for e in events] == [1, 2]


def test_rolled_back_change_leaves_no_event_and_no_broadcast(paper, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                paper.status = PaperStatus.FAILED
                paper.save()
                raise RuntimeError("boom")
    assert status_events(paper) == []
    assert callbacks == []
    assert Paper.objects.get(pk=paper.pk).status == PaperStatus.UPLOADED


def test_update_fields_without_status_skips_the_check(paper, django_assert_num_queries):
    paper.title = "x"
    with django_assert_num_queries(3):  # savepoint, UPDATE, release: no status lookup
        paper.save(update_fields=["title"])
