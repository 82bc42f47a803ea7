"""The outbox: every status change, from anywhere, yields exactly one status_changed event after commit."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from papers import services
from papers.models import Paper, PaperEvent, PaperStatus
from papers.signals import event_committed, paper_access_changed
from realtime.events import ErrorEvent, utc_now
from tests.schemas import assert_wire_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper(user, text_upload):
    return Paper.objects.create(owner=user, title="A paper", file=text_upload)


def status_events(paper):
    return list(PaperEvent.objects.filter(paper=paper, event_type="status_changed").order_by("seq"))


def test_creating_a_paper_is_not_a_status_change(paper):
    assert status_events(paper) == []


@pytest.fixture
def announced():
    """What papers announced after commit: committed event payloads and access changes."""
    record = {"events": [], "access": []}

    def on_event(sender, payload, owner_id, **kwargs):
        record["events"].append((payload, owner_id))

    def on_access(sender, paper_id, reason, **kwargs):
        record["access"].append((paper_id, reason))

    event_committed.connect(on_event, dispatch_uid="test.on_event")
    paper_access_changed.connect(on_access, dispatch_uid="test.on_access")
    yield record
    event_committed.disconnect(dispatch_uid="test.on_event")
    paper_access_changed.disconnect(dispatch_uid="test.on_access")


def test_plain_save_in_a_shell_logs_one_event_and_announces_it_after_commit(
    paper, announced, django_capture_on_commit_callbacks
):
    paper.status = PaperStatus.PROCESSING
    with django_capture_on_commit_callbacks() as callbacks:
        paper.save()
    [event] = status_events(paper)
    assert event.seq == 1
    assert event.payload["old_status"] == "uploaded"
    assert event.payload["new_status"] == "processing"
    assert event.payload["message"] == "Processing started"
    assert_wire_event(event.payload)
    assert announced == {"events": [], "access": []}, "nothing is announced before the commit"
    for callback in callbacks:
        callback()
    assert announced["events"] == [(event.payload, paper.owner_id)]
    # A full save may have given the paper away; its subscribers re-check (a no-op for those who still see it).
    assert announced["access"] == [(str(paper.pk), "access_changed")]


def test_a_lifecycle_save_announces_no_access_change(paper, announced, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr("papers.tasks.process_paper.apply_async", lambda **kw: None)
    with django_capture_on_commit_callbacks(execute=True):
        services.paper_enqueue(paper=paper)
    assert [payload["new_status"] for payload, _ in announced["events"]] == ["queued"]
    assert announced["access"] == []


def test_a_message_written_for_an_earlier_change_is_not_reused(paper):
    services.paper_enqueue(paper=paper, message="Queued by hand")
    paper.status = PaperStatus.PROCESSING  # a shell save that sets no message
    paper.save()
    assert [e.payload["message"] for e in status_events(paper)] == ["Queued by hand", "Processing started"]
    assert Paper.objects.get(pk=paper.pk).status_message == "Queued by hand"


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
    with django_assert_num_queries(1):  # the UPDATE alone: no status lookup
        paper.save(update_fields=["title"])


@contextmanager
def row_locks(monkeypatch):
    """Record every lock-taking query built (select_for_update, by model); on PostgreSQL check the SQL agrees."""
    taken = []
    original = QuerySet.select_for_update

    def recording(self, *args, **kwargs):
        taken.append(self.model.__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "select_for_update", recording)
    with CaptureQueriesContext(connection) as queries:
        yield taken
    if connection.features.has_select_for_update:  # SQLite has no FOR UPDATE: its writers are serialized
        assert sum("FOR UPDATE" in q["sql"] for q in queries.captured_queries) == len(taken)


def test_a_status_change_in_a_transaction_locks_the_row_only_by_its_update(paper, monkeypatch):
    with row_locks(monkeypatch) as taken, transaction.atomic():
        paper.status = PaperStatus.QUEUED
        paper.save()
    assert taken == []
    assert len(status_events(paper)) == 1


def test_a_service_status_change_locks_the_row_once(paper, monkeypatch):
    services.paper_enqueue(paper=paper)
    with row_locks(monkeypatch) as taken:
        services.paper_cancel(paper=paper)  # its own check-then-write lock; the hook adds none
    assert taken == ["Paper"]
    assert [e.payload["new_status"] for e in status_events(paper)] == ["queued", "cancelled"]


def test_a_worker_status_change_locks_the_row_once(paper, monkeypatch):
    services.paper_enqueue(paper=paper)
    task_id = Paper.objects.get(pk=paper.pk).task_id
    with row_locks(monkeypatch) as taken:
        started = services._paper_start(paper_id=paper.pk, task_id=task_id)
    assert started is not None and taken == ["Paper"]
    assert [e.payload["new_status"] for e in status_events(paper)] == ["queued", "processing"]


@pytest.mark.django_db(transaction=True)
def test_an_autocommit_save_locks_the_row_once_and_logs_after_its_update(user, text_upload, monkeypatch):
    paper = Paper.objects.create(owner=user, title="A paper", file=text_upload)
    assert not connection.in_atomic_block
    with row_locks(monkeypatch) as taken:
        paper.status = PaperStatus.PROCESSING
        paper.save()
    assert taken == ["Paper"]
    [event] = status_events(paper)
    assert (event.payload["old_status"], event.payload["new_status"]) == ("uploaded", "processing")


def test_pruning_keeps_the_newest_status_change_the_next_one_starts_from(paper):
    for status in (PaperStatus.QUEUED, PaperStatus.PROCESSING, PaperStatus.COMPLETED):
        paper.status = status
        paper.save()
    services.paper_event_append(
        paper=paper, event=ErrorEvent(paper_id=paper.pk, error_code="x", error_message="late", details={})
    )
    Paper.objects.filter(pk=paper.pk).update(updated_at=utc_now() - timedelta(days=30))
    assert services.paper_events_prune() == 2
    kept = PaperEvent.objects.filter(paper=paper).order_by("seq")
    assert [(e.seq, e.event_type) for e in kept] == [(3, "status_changed"), (4, "error")]
    paper.status = PaperStatus.QUEUED
    paper.save()
    [*_, event] = status_events(paper)
    assert (event.seq, event.payload["old_status"], event.payload["new_status"]) == (5, "completed", "queued")


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_never_breaks_a_committed_change(user, text_upload):
    paper = Paper.objects.create(owner=user, title="A paper", file=text_upload)

    def broken(**kwargs):
        raise RuntimeError("the broadcast is down")

    event_committed.connect(broken, dispatch_uid="test.broken")
    try:
        with transaction.atomic():
            paper.status = PaperStatus.QUEUED
            paper.save()
    finally:
        event_committed.disconnect(dispatch_uid="test.broken")
    assert Paper.objects.get(pk=paper.pk).status == PaperStatus.QUEUED
    assert len(status_events(paper)) == 1
