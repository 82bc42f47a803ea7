"""Services: the pipeline run by paper_process, its events, failures, cancellation and reprocessing."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile

from papers import services
from papers.models import Entity, Paper, PaperEvent, PaperStatus, PipelineStep, Relationship
from realtime.events import utc_now
from tests.conftest import SAMPLE_TEXT, make_pdf
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]


def queued_paper(owner, content: bytes, name: str = "p.pdf") -> Paper:
    paper = Paper(owner=owner, title="t")
    paper.file.save(name, ContentFile(content), save=False)
    paper.save()
    return services.paper_enqueue(paper=paper)


def log(paper) -> list[dict]:
    return [e.payload for e in PaperEvent.objects.filter(paper=paper).order_by("seq")]


def test_processing_a_pdf_logs_the_whole_event_sequence(user):
    paper = queued_paper(user, make_pdf(SAMPLE_TEXT))
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    paper.refresh_from_db()
    assert paper.status == "completed" and paper.progress == 1.0 and paper.completed_at
    events = log(paper)
    for event in events:
        assert_wire_event(event)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == kinds[1] == kinds[-1] == "status_changed"
    assert events[1]["new_status"] == "processing" and events[-1]["new_status"] == "completed"
    names = {(e["entity_type"], e["entity_name"]) for e in events if e["event_type"] == "entity_extracted"}
    assert {("MODEL", "NovaNet"), ("DATASET", "SQuAD"), ("MODEL", "BERT")} <= names
    assert Entity.objects.filter(paper=paper).count() == kinds.count("entity_extracted")
    assert Relationship.objects.filter(paper=paper).count() == kinds.count("relationship_extracted") > 0
    boundaries = [(e["step"], e["step_progress"]) for e in events if e["event_type"] == "progress_updated"]
    for step in PipelineStep.values:
        assert (step, 0.0) in boundaries
    assert boundaries[-1] == ("relationship_extraction", 1.0)


def test_reprocessing_replaces_results_without_duplicates(user):
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    first = sorted(Entity.objects.filter(paper=paper).values_list("entity_type", "name"))
    paper = services.paper_reprocess(paper=Paper.objects.get(pk=paper.pk))
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    assert sorted(Entity.objects.filter(paper=paper).values_list("entity_type", "name")) == first
    seqs = [e["seq"] for e in log(paper)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_corrupt_pdf_fails_with_an_error_event(user):
    paper = queued_paper(user, b"%PDF-1.4\n" + b"\x00garbage" * 100)
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    paper.refresh_from_db()
    assert paper.status == "failed" and paper.error_code == "unreadable_pdf"
    error, failed = log(paper)[-2:]
    assert error["event_type"] == "error"
    assert error["details"] == {"step": "text_extraction", "task_id": paper.task_id}
    assert (failed["old_status"], failed["new_status"]) == ("processing", "failed")


def test_unexpected_exception_fails_the_paper_with_the_step(user, settings):
    settings.PAPER_ENTITY_EXTRACTOR = "tests.papers.test_services.exploding_extractor"
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    error = next(e for e in log(paper) if e["event_type"] == "error")
    assert error["error_code"] == "processing_failed"
    assert error["details"] == {"step": "entity_extraction", "task_id": paper.task_id}
    assert "entity extraction" in error["error_message"] and "kaboom" in error["error_message"]
    assert Paper.objects.get(pk=paper.pk).status == "failed"


def exploding_extractor(text, *, on_progress=None):
    raise RuntimeError("kaboom")


def test_cancel_during_processing_stops_the_pipeline(user, settings):
    settings.PAPER_ENTITY_EXTRACTOR = "tests.papers.test_services.cancelling_extractor"
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    paper.refresh_from_db()
    assert paper.status == "cancelled"
    assert not Entity.objects.filter(paper=paper).exists()
    assert "error" not in [e["event_type"] for e in log(paper)]


def cancelling_extractor(text, *, on_progress=None):
    services.paper_cancel(paper=Paper.objects.get(status=PaperStatus.PROCESSING))
    on_progress(0.5)  # the next report notices the cancellation
    return []


def test_a_cancelled_paper_is_not_started(user):
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services.paper_cancel(paper=paper)
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    assert Paper.objects.get(pk=paper.pk).status == "cancelled"


def test_progress_reporter_throttles_between_boundaries(user, settings):
    settings.PROGRESS_MIN_INTERVAL = 10
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    paper = services._paper_start(paper_id=paper.pk, task_id=paper.task_id)
    now = [0.0]
    reporter = services.ProgressReporter(paper=paper, clock=lambda: now[0])
    for fraction in (0.0, 0.2, 0.4, 1.0):
        reporter.report(PipelineStep.TEXT_EXTRACTION, fraction)
    now[0] = 11.0
    reporter.report(PipelineStep.ENTITY_EXTRACTION, 0.5)
    sent = [(e["step"], e["step_progress"], e["progress"]) for e in log(paper) if e["event_type"] == "progress_updated"]
    assert sent == [("text_extraction", 0.0, 0.0), ("text_extraction", 1.0, 0.3), ("entity_extraction", 0.5, 0.525)]


def test_eta_extrapolates_from_elapsed_time(user):
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    paper.started_at = utc_now() - timedelta(seconds=30)
    eta = services.ProgressReporter(paper=paper).estimate_completion(0.5)
    assert abs((eta - utc_now()).total_seconds() - 30) < 2


def test_redelivery_after_a_lost_worker_retries_cleanly(user):
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services._paper_start(paper_id=paper.pk, task_id=paper.task_id)  # the first worker dies after starting
    Entity.objects.create(paper=paper, entity_type="MODEL", name="Leftover", confidence=0.5)
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)  # acks_late redelivers the task
    paper.refresh_from_db()
    assert paper.status == "completed" and paper.attempts == 2
    transitions = [(e["old_status"], e["new_status"], e["message"]) for e in log(paper)
                   if e["event_type"] == "status_changed"]
    assert transitions[1:4] == [
        ("queued", "processing", "Processing started"),
        ("processing", "queued", "Retrying after the worker was lost (attempt 2 of 3)"),
        ("queued", "processing", "Processing started"),
    ]
    names = list(Entity.objects.filter(paper=paper).values_list("name", flat=True))
    assert "Leftover" not in names and len(names) == len(set(names))


def test_a_paper_that_keeps_killing_workers_fails_with_worker_lost(user, settings):
    settings.PAPER_MAX_ATTEMPTS = 2
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    for _ in range(2):
        services._paper_start(paper_id=paper.pk, task_id=paper.task_id)
    assert services._paper_start(paper_id=paper.pk, task_id=paper.task_id) is None
    paper.refresh_from_db()
    assert (paper.status, paper.error_code) == ("failed", "worker_lost")
    error = next(e for e in log(paper) if e["event_type"] == "error")
    assert error["details"] == {"step": "text_extraction", "task_id": paper.task_id}


def test_stalled_sweep_fails_papers_without_progress_and_says_so(user, settings):
    settings.PAPER_STALL_TIMEOUT = timedelta(minutes=5)
    stalled = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services._paper_start(paper_id=stalled.pk, task_id=stalled.task_id)
    busy = queued_paper(user, SAMPLE_TEXT.encode(), "q.txt")
    services._paper_start(paper_id=busy.pk, task_id=busy.task_id)
    Paper.objects.filter(pk=stalled.pk).update(updated_at=utc_now() - timedelta(minutes=6))
    assert services.paper_stalled_fail() == 1
    stalled.refresh_from_db()
    assert (stalled.status, stalled.error_code) == ("failed", "stalled")
    error, failed = log(stalled)[-2:]
    assert error["event_type"] == "error" and "No progress for 300 s" in error["error_message"]
    assert error["details"] == {"step": "text_extraction", "task_id": stalled.task_id}
    assert failed["new_status"] == "failed"
    assert Paper.objects.get(pk=busy.pk).status == "processing"


def test_a_stale_task_from_before_a_reprocess_does_nothing(user):
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    old_task = paper.task_id
    services.paper_cancel(paper=paper)
    paper = services.paper_reprocess(paper=Paper.objects.get(pk=paper.pk))
    services.paper_process(paper_id=paper.pk, task_id=old_task)  # the old delivery arrives late
    paper.refresh_from_db()
    assert (paper.status, paper.attempts) == ("queued", 0)
    assert services.paper_fail(paper_id=paper.pk, task_id=old_task, step="x", error_code="e", error_message="m") is None
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    assert Paper.objects.get(pk=paper.pk).status == "completed"
