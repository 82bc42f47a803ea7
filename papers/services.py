"""Writes: every change to papers, their extracted data and their event log goes through here."""

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.module_loading import import_string
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from paperpipeline import metrics
from realtime.events import STATUS_CHANGED, EntityEvent, ErrorEvent, ProgressEvent, RelationshipEvent, utc_now
from realtime.events import PaperEvent as WireEvent

from . import selectors
from .models import (
    ACTIVE_STATUSES,
    EXTENSIONS,
    FINAL_STATUSES,
    LIFECYCLE_FIELDS,
    Entity,
    Paper,
    PaperEvent,
    PaperStatus,
    PipelineStep,
    Relationship,
)
from .pipeline.content import SNIFF_BYTES, sniff
from .pipeline.isolated import extract_text_isolated
from .pipeline.text import TextExtractionError
from .pipeline.types import ENTITY_SIGNALS
from .signals import event_committed_announce

logger = logging.getLogger(__name__)

# Share of overall progress each step covers, in pipeline order; entity extraction dominates.
STEP_SPANS = {
    PipelineStep.TEXT_EXTRACTION: (0.0, 0.3),
    PipelineStep.ENTITY_EXTRACTION: (0.3, 0.75),
    PipelineStep.RELATIONSHIP_EXTRACTION: (0.75, 1.0),
}


class PaperNotActive(Exception):
    """The paper stopped being processed (cancelled or finished elsewhere); the pipeline stops quietly."""


# --- the event log (transactional outbox) ---


def paper_event_append(*, paper: Paper, event: WireEvent, owner_id: Any = None) -> PaperEvent:
    """Append an event with the paper's next seq in the caller's transaction; announce it once committed.

    The paper's row lock serializes seq allocation per paper across processes. Without owner_id it is taken
    here; a caller already holding it in this transaction (the status hook, whose save's UPDATE took it)
    passes the owner_id it read under it, and no second lock is taken."""
    with transaction.atomic():
        if owner_id is None:
            row = lock_paper(paper_id=paper.pk, fields=("owner_id",))
            if row is None:
                raise Paper.DoesNotExist(f"paper {paper.pk} is gone")
            owner_id = row["owner_id"]
        seq = (PaperEvent.objects.filter(paper_id=paper.pk).aggregate(m=Max("seq"))["m"] or 0) + 1
        event = replace(event, seq=seq, event_id=uuid.uuid4())
        payload = event.to_dict()
        logged = PaperEvent.objects.create(
            paper_id=paper.pk, seq=seq, event_id=event.event_id, event_type=event.event_type, payload=payload
        )
        event_committed_announce(payload=payload, owner_id=owner_id)
    return logged


def lock_paper(*, paper_id: Any, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """Lock the paper's row for the rest of the transaction (SELECT … FOR UPDATE); its `fields`, None if gone."""
    return Paper.objects.select_for_update().filter(pk=paper_id).values(*fields).first()


def paper_events_prune(*, now: datetime | None = None) -> int:
    """Prune the logs of papers final for longer than EVENT_RETENTION; return the number of events deleted."""
    cutoff = (now or utc_now()) - settings.EVENT_RETENTION
    finished = Paper.objects.filter(status__in=FINAL_STATUSES, updated_at__lt=cutoff)
    # Each paper keeps its newest event: seq allocation continues from it, so seqs never restart. And its newest
    # status_changed event: the status hook reads the status a change starts from there.
    newest = PaperEvent.objects.filter(paper=OuterRef("paper")).order_by("-seq").values("seq")[:1]
    newest_status = PaperEvent.objects.filter(paper=OuterRef("paper"), event_type=STATUS_CHANGED)
    newest_status = newest_status.order_by("-seq").values("seq")[:1]
    deleted, _ = (
        PaperEvent.objects.filter(paper__in=finished)
        .exclude(seq=Subquery(newest))
        .exclude(seq=Coalesce(Subquery(newest_status), 0))  # seqs start at 1: 0 keeps nothing more
        .delete()
    )
    return deleted


# --- upload and lifecycle ---


def paper_file_validate(*, file: UploadedFile) -> str:
    """Check size, content and name of an upload; return its content type or raise ValidationError."""
    if file.size == 0:
        raise ValidationError("The file is empty.", code="empty_file")
    if file.size > settings.PAPER_MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"The file is {file.size} bytes; the limit is {settings.PAPER_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
        )
    content_type = _sniffed_type(file)
    # The name must agree with the content: a text file named .html or .svg would be a page to a browser.
    extension = os.path.splitext(file.name or "")[1].lower()
    if extension not in EXTENSIONS.values():
        raise ValidationError("Only .pdf and .txt files are accepted.", code="unsupported_type")
    if extension != EXTENSIONS[content_type]:
        described = "a PDF" if content_type == "application/pdf" else "plain text"
        raise ValidationError(
            f"The file is named {extension} but its content is {described}.", code="extension_mismatch"
        )
    return content_type


def _sniffed_type(file: UploadedFile) -> str:
    """The content type of an upload by the one sniffing rule (papers.pipeline.content), else ValidationError."""
    file.seek(0)
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    content_type = sniff(head).content_type
    if content_type is None:
        raise ValidationError("Only PDF files and UTF-8 plain-text files are accepted.", code="unsupported_type")
    return content_type


def paper_create(*, owner, file: UploadedFile, title: str = "") -> Paper:
    """Validate and store an uploaded paper, then queue it for processing."""
    content_type = paper_file_validate(file=file)
    name = (file.name or "paper").rsplit("/", 1)[-1]
    with transaction.atomic():
        paper = Paper(
            owner=owner,
            title=title.strip() or name.rsplit(".", 1)[0],
            original_filename=name,
            content_type=content_type,
            size_bytes=file.size,
        )
        paper.file.save(name, file, save=False)
        paper.save()
        return paper_enqueue(paper=paper)


def paper_enqueue(*, paper: Paper, message: str = "Queued for processing") -> Paper:
    """Queue a paper for the pipeline; the task is sent only once the queued state has committed."""
    with transaction.atomic():
        paper.status = PaperStatus.QUEUED
        paper.status_message = message
        paper.task_id = str(uuid.uuid4())
        paper.attempts = 0
        paper.progress = paper.step_progress = 0.0
        paper.current_step = ""
        paper.error_code = paper.error_message = ""
        paper.estimated_completion = paper.started_at = paper.completed_at = None
        paper.save(update_fields=LIFECYCLE_FIELDS)
        paper_id, task_id = str(paper.pk), paper.task_id
        transaction.on_commit(lambda: _send_process_task(paper_id, task_id))
    return paper


def _send_process_task(paper_id: str, task_id: str) -> None:
    """Hand the paper to Celery; if the broker refuses, fail the paper visibly rather than leave it queued."""
    from .tasks import process_paper

    try:
        process_paper.apply_async(args=[paper_id], task_id=task_id, retry=False)
    except Exception as exc:  # kombu raises several unrelated types for an unreachable broker
        logger.exception("could not queue paper %s", paper_id)
        paper_fail(
            paper_id=paper_id, task_id=task_id, step="queue", error_code="queue_unavailable",
            error_message=f"The task queue is unavailable: {exc.__class__.__name__}",
        )


def paper_reprocess(*, paper: Paper) -> Paper:
    """Queue a paper again unless it is processing, or queued for less than PAPER_QUEUED_RESEND_AFTER."""
    with transaction.atomic():
        paper = Paper.objects.select_for_update().get(pk=paper.pk)  # two requests at once queue it once
        if paper.status in ACTIVE_STATUSES and not _queued_too_long(paper):
            raise ValidationError("The paper is already being processed.", code="already_active")
        # A new task id: should the old task still be waiting somewhere, _paper_start ignores it.
        return paper_enqueue(paper=paper, message="Queued for reprocessing")


def _queued_too_long(paper: Paper, *, now: datetime | None = None) -> bool:
    """Whether a paper has been queued so long that its task was probably lost (e.g. with Redis's data)."""
    cutoff = (now or utc_now()) - settings.PAPER_QUEUED_RESEND_AFTER
    return paper.status == PaperStatus.QUEUED and paper.updated_at < cutoff


def paper_queued_resend(*, now: datetime | None = None) -> int:
    """Queue again, under new task ids, papers queued longer than PAPER_QUEUED_RESEND_AFTER; the number re-sent.

    Only while no pipeline task waits in the broker: a waiting task will run (and would then be a no-op, its
    task id stale), and re-sending papers of a long queue would put them at its back again and again.
    """
    stale = Paper.objects.filter(
        status=PaperStatus.QUEUED, updated_at__lt=(now or utc_now()) - settings.PAPER_QUEUED_RESEND_AFTER
    ).order_by("updated_at").values_list("pk", flat=True)
    stale = list(stale)
    if not stale or _pipeline_tasks_waiting():
        return 0
    resent = 0
    for paper_id in stale:
        with transaction.atomic():
            # Re-read under the lock: a worker may have started it since the scan.
            paper = Paper.objects.select_for_update().filter(pk=paper_id).first()
            if paper is None or not _queued_too_long(paper, now=now):
                continue
            logger.warning("paper %s was queued since %s without being started; sending its task again",
                           paper.pk, paper.updated_at)
            paper_enqueue(paper=paper, message="Queued again (its task was lost)")
            resent += 1
    return resent


def _pipeline_tasks_waiting() -> int:
    """Messages waiting in the broker's pipeline queue (those a worker already reserved not counted)."""
    from paperpipeline.celery import app

    with app.connection_for_read() as connection:
        # Not passive: an empty Redis queue does not exist, and declaring it again is harmless.
        return connection.default_channel.queue_declare(queue=settings.CELERY_TASK_DEFAULT_QUEUE).message_count


def paper_cancel(*, paper: Paper) -> Paper:
    """Cancel a queued or processing paper; the worker notices at its next progress step and stops."""
    with transaction.atomic():
        paper = Paper.objects.select_for_update().get(pk=paper.pk)
        if paper.status not in ACTIVE_STATUSES:
            raise ValidationError("Only queued or processing papers can be cancelled.", code="not_active")
        paper.status = PaperStatus.CANCELLED
        paper.status_message = "Processing cancelled by user"
        paper.estimated_completion = None
        paper.save(update_fields=LIFECYCLE_FIELDS)
    return paper


def paper_delete(*, paper: Paper) -> None:
    """Delete a paper with everything extracted and logged; its file goes once the deletion commits (the
    post_delete hook, which also covers the admin, cascades and queryset deletes)."""
    paper.delete()


def paper_fail(*, paper_id: Any, task_id: str, step: str, error_code: str, error_message: str) -> Paper | None:
    """Record an ERROR event and mark the paper failed, in one transaction; a no-op unless that task is current."""
    with transaction.atomic():
        paper = Paper.objects.select_for_update().filter(pk=paper_id).first()
        if paper is None or paper.status not in ACTIVE_STATUSES or (paper.task_id and paper.task_id != task_id):
            return None
        paper_event_append(
            paper=paper,
            event=ErrorEvent(
                paper_id=paper.pk, error_code=error_code, error_message=error_message,
                details={"step": step, "task_id": task_id},
            ),
        )
        paper.status = PaperStatus.FAILED
        paper.status_message = error_message
        paper.error_code, paper.error_message = error_code, error_message
        paper.estimated_completion = None
        paper.save(update_fields=LIFECYCLE_FIELDS)
    metrics.PAPERS_FAILED.labels(error_code).inc()
    return paper


# --- processing (called by the Celery task) ---


def paper_process(*, paper_id: Any, task_id: str) -> None:
    """Run the whole pipeline for one paper, reporting every step; failures end in an ERROR event."""
    paper = _paper_start(paper_id=paper_id, task_id=task_id)
    if paper is None:
        return
    progress = ProgressReporter(paper=paper)
    step = PipelineStep.TEXT_EXTRACTION
    try:
        progress.report(step, 0.0)
        text = extract_text_isolated(  # in a child process: pdfium aborts rather than fail an allocation
            paper.file.path, on_page=lambda done, total: progress.report(step, done / total),
            max_pages=settings.PAPER_MAX_PAGES, max_chars=settings.PAPER_MAX_TEXT_CHARS,
        )
        Paper.objects.filter(pk=paper.pk).update(text_length=len(text))

        step = PipelineStep.ENTITY_EXTRACTION
        progress.report(step, 0.0)
        extract_entities = import_string(settings.PAPER_ENTITY_EXTRACTOR)
        found = extract_entities(text, on_progress=lambda f: progress.report(step, 0.5 * f))
        entities = _entities_record(paper=paper, found=found, on_each=lambda f: progress.report(step, 0.5 + 0.5 * f))

        step = PipelineStep.RELATIONSHIP_EXTRACTION
        progress.report(step, 0.0)
        extract_relationships = import_string(settings.PAPER_RELATIONSHIP_EXTRACTOR)
        links = extract_relationships(text, found, on_progress=lambda f: progress.report(step, 0.5 * f))
        _relationships_record(
            paper=paper, found=links, entities=entities, on_each=lambda f: progress.report(step, 0.5 + 0.5 * f)
        )
        progress.report(step, 1.0)
        progress.step_done()
        _paper_complete(paper=paper)
    except PaperNotActive:
        logger.info("paper %s stopped being active during %s; stopping", paper_id, step)
    except TextExtractionError as exc:
        paper_fail(paper_id=paper.pk, task_id=task_id, step=step, error_code=exc.code, error_message=str(exc))
    except SoftTimeLimitExceeded:
        logger.warning("paper %s exceeded the soft time limit during %s", paper_id, step)
        paper_time_limit_fail(
            paper_id=paper.pk, task_id=task_id, seconds=settings.PAPER_TASK_SOFT_TIME_LIMIT, step=step
        )
    except MemoryError:
        logger.warning("paper %s ran out of memory during %s", paper_id, step)
        paper_fail(
            paper_id=paper.pk, task_id=task_id, step=step, error_code="out_of_memory",
            error_message=(
                f"Processing needed more than the {settings.PAPER_WORKER_MAX_MEMORY_MB} MiB of memory a worker "
                f"allows; stopped during {step.label.lower()}."
            ),
        )
    except Exception as exc:
        logger.exception("paper %s failed during %s", paper_id, step)
        paper_fail(
            paper_id=paper.pk, task_id=task_id, step=step, error_code="processing_failed",
            error_message=f"Failed during {step.label.lower()}: {exc.__class__.__name__}: {exc}"[:500],
        )


def paper_time_limit_fail(*, paper_id: Any, task_id: str, seconds: float, step: str = "") -> Paper | None:
    """Fail a paper whose task ran past a time limit (the soft one in the task, the hard one in the worker)."""
    step = step or Paper.objects.filter(pk=paper_id).values_list("current_step", flat=True).first() or "queue"
    label = PipelineStep(step).label.lower() if step in PipelineStep.values else step
    return paper_fail(
        paper_id=paper_id, task_id=task_id, step=step, error_code="time_limit_exceeded",
        error_message=f"Processing took longer than the {seconds:g} s time limit; stopped during {label}.",
    )


def _paper_start(*, paper_id: Any, task_id: str) -> Paper | None:
    """Move a queued paper to processing and clear earlier results; None if it should not run."""
    with transaction.atomic():
        paper = Paper.objects.select_for_update().filter(pk=paper_id).first()
        if paper is None or paper.status not in ACTIVE_STATUSES:
            return None
        if paper.task_id and paper.task_id != task_id:
            return None  # a stale task: the paper was queued again since, under a new task id
        paper.attempts += 1
        if paper.status == PaperStatus.PROCESSING:
            # Redelivered while marked processing: the worker running it died (acks_late requeued it).
            if paper.attempts > settings.PAPER_MAX_ATTEMPTS:
                paper.save(update_fields=["attempts"])
                paper_fail(
                    paper_id=paper.pk, task_id=task_id, step=paper.current_step or "queue",
                    error_code="worker_lost",
                    error_message=f"Processing was interrupted {paper.attempts - 1} times (worker lost); giving up.",
                )
                return None
            paper.status = PaperStatus.QUEUED
            paper.status_message = (
                f"Retrying after the worker was lost (attempt {paper.attempts} of {settings.PAPER_MAX_ATTEMPTS})"
            )
            paper.save(update_fields=LIFECYCLE_FIELDS)
        # Reprocessing and retries start clean, so results are never duplicated.
        Entity.objects.filter(paper=paper).delete()
        paper.status = PaperStatus.PROCESSING
        paper.status_message = "Processing started"
        paper.task_id = task_id
        paper.started_at = utc_now()
        paper.progress = paper.step_progress = 0.0
        paper.current_step = PipelineStep.TEXT_EXTRACTION
        paper.save(update_fields=LIFECYCLE_FIELDS)
    return paper


def paper_stalled_fail(*, now: datetime | None = None) -> int:
    """Fail processing papers with no progress for PAPER_STALL_TIMEOUT, saying so in an ERROR event."""
    cutoff = (now or utc_now()) - settings.PAPER_STALL_TIMEOUT
    failed = 0
    seconds = int(settings.PAPER_STALL_TIMEOUT.total_seconds())
    stale = Paper.objects.filter(status=PaperStatus.PROCESSING, updated_at__lt=cutoff).values_list("pk", flat=True)
    for paper_id in stale:
        with transaction.atomic():
            # Re-read under the lock: progress made since the scan means it is not stalled after all.
            paper = Paper.objects.select_for_update().get(pk=paper_id)
            if paper.status != PaperStatus.PROCESSING or paper.updated_at >= cutoff:
                continue
            failed += paper_fail(
                paper_id=paper.pk, task_id=paper.task_id, step=paper.current_step or "queue", error_code="stalled",
                error_message=f"No progress for {seconds} s; the worker processing it was probably lost.",
            ) is not None
    return failed


def _paper_complete(*, paper: Paper) -> None:
    """Mark a processed paper completed, unless it was cancelled meanwhile."""
    with transaction.atomic():
        current = Paper.objects.select_for_update().get(pk=paper.pk)
        if current.status != PaperStatus.PROCESSING or current.task_id != paper.task_id:
            raise PaperNotActive(current.status)
        paper = current
        paper.status = PaperStatus.COMPLETED
        paper.status_message = "Processing completed"
        paper.completed_at = paper.estimated_completion = utc_now()
        paper.progress = paper.step_progress = 1.0
        paper.save(update_fields=LIFECYCLE_FIELDS)
    metrics.PAPERS_COMPLETED.inc()


# What an extractor hands over is checked before it is stored: it goes to every subscriber and into the event log
# for good, and the extractor is pluggable (PAPER_ENTITY_EXTRACTOR), so a bug there must not put arbitrary values
# on the wire. Five signals exist today; the cap keeps each event small should more be added.
MAX_SIGNALS = 5
SCORE_MAX_CHARS = 32  # Relationship.score's max_length


def _salience(value: Any) -> float:
    """A salience as stored: a finite number clamped to [0, 1], rounded like confidence; 0 when it is none."""
    value = float(value or 0.0)
    return round(min(max(value, 0.0), 1.0), 4) if math.isfinite(value) else 0.0


def _signals(values: Iterable[str]) -> list[str]:
    """Known signals only (ENTITY_SIGNALS), each once, in the extractor's order, at most MAX_SIGNALS."""
    known: list[str] = []
    for value in values or ():
        if value in ENTITY_SIGNALS and value not in known:
            known.append(value)
    return known[:MAX_SIGNALS]


def _score(value: str | None) -> str:
    """A score as written, trimmed; empty when there is none or it is longer than SCORE_MAX_CHARS: a cut number
    would be another number, so an overlong one (an extractor that took a run of text) is dropped, not cut."""
    value = (value or "").strip()
    return value if len(value) <= SCORE_MAX_CHARS else ""


def _entities_record(*, paper: Paper, found: list, on_each: Callable[[float], None]) -> dict[tuple[str, str], Entity]:
    """Store found entities, one entity_extracted event each; return them by (type, name)."""
    stored: dict[tuple[str, str], Entity] = {}
    for index, item in enumerate(found, start=1):
        with transaction.atomic():
            entity, created = Entity.objects.get_or_create(
                paper=paper, entity_type=item.entity_type, name=item.name[:200],
                defaults={
                    "confidence": round(item.confidence, 4), "mentions": item.mentions,
                    "salience": _salience(item.salience), "key": bool(item.key), "signals": _signals(item.signals),
                },
            )
            if created:
                paper_event_append(paper=paper, event=_entity_event(entity))
        stored[(item.entity_type, item.name)] = entity
        on_each(index / len(found))
    return stored


def _entity_event(entity: Entity) -> EntityEvent:
    """The entity_extracted event of a stored entity, from its stored values (the API shows the same)."""
    return EntityEvent(
        paper_id=entity.paper_id, entity_id=str(entity.pk), entity_type=entity.entity_type, entity_name=entity.name,
        confidence=entity.confidence, mentions=entity.mentions, salience=entity.salience, key=entity.key,
        signals=tuple(entity.signals),
    )


def _relationships_record(
    *, paper: Paper, found: list, entities: dict[tuple[str, str], Entity], on_each: Callable[[float], None]
) -> None:
    """Store found relationships between stored entities, one relationship_extracted event each.

    A result's metric is the paper's stored METRIC entity of that name. A metric that was not extracted as an
    entity is not created here (entities come only from entity extraction, each announced by its own event):
    the relationship keeps its score with no metric."""
    for index, item in enumerate(found, start=1):
        source, target = entities.get(tuple(item.source)), entities.get(tuple(item.target))
        if source is None or target is None or source == target:
            continue
        metric = entities.get(("METRIC", item.metric)) if item.metric else None
        with transaction.atomic():
            link, created = Relationship.objects.get_or_create(
                paper=paper, relationship_type=item.relationship_type, source=source, target=target,
                defaults={
                    "confidence": round(item.confidence, 4), "evidence": item.evidence, "metric": metric,
                    "score": _score(item.score),
                },
            )
            if created:
                paper_event_append(paper=paper, event=_relationship_event(link))
        on_each(index / len(found))


def _relationship_event(link: Relationship) -> RelationshipEvent:
    """The relationship_extracted event of a stored relationship; metric and score null when it has none."""
    return RelationshipEvent(
        paper_id=link.paper_id, relationship_id=str(link.pk), relationship_type=link.relationship_type,
        source_id=str(link.source_id), target_id=str(link.target_id), confidence=link.confidence,
        metric_id=str(link.metric_id) if link.metric_id else None, metric=link.metric.name if link.metric else None,
        score=link.score or None,
    )


class ProgressReporter:
    """Turns step fractions into progress_updated events: always at step boundaries, throttled in between."""

    def __init__(self, *, paper: Paper, clock: Callable[[], float] = time.monotonic):
        self.paper = paper
        self.clock = clock
        self.last_sent = float("-inf")
        self.last_key: tuple[str, float] | None = None
        self.prior = selectors.expected_processing_duration()
        self.step: str | None = None  # the step being timed, since step_started (time.monotonic)
        self.step_started = 0.0

    def report(self, step: PipelineStep, step_progress: float) -> None:
        """Record and broadcast progress; raise PaperNotActive if the paper was cancelled meanwhile."""
        if step != self.step:  # the previous step is done once the next one reports
            self.step_done()
            self.step, self.step_started = step, time.monotonic()
        step_progress = min(max(step_progress, 0.0), 1.0)
        boundary = step_progress in (0.0, 1.0)
        if (step, step_progress) == self.last_key:
            return
        if not boundary and self.clock() - self.last_sent < settings.PROGRESS_MIN_INTERVAL:
            return
        start, end = STEP_SPANS[step]
        overall = round(start + (end - start) * step_progress, 4)
        eta = self.estimate_completion(overall)
        with transaction.atomic():
            updated = Paper.objects.filter(
                pk=self.paper.pk, status=PaperStatus.PROCESSING, task_id=self.paper.task_id
            ).update(
                progress=overall, current_step=step, step_progress=round(step_progress, 4),
                estimated_completion=eta, updated_at=utc_now(),
            )
            if not updated:
                raise PaperNotActive(self.paper.pk)
            paper_event_append(
                paper=self.paper,
                event=ProgressEvent(
                    paper_id=self.paper.pk, progress=overall, step=str(step),
                    step_progress=round(step_progress, 4), estimated_completion=eta,
                ),
            )
        self.last_sent, self.last_key = self.clock(), (step, step_progress)

    def step_done(self) -> None:
        """The step being timed completed: observe its duration (a step that failed is not observed)."""
        if self.step is not None:
            metrics.PIPELINE_STEP_SECONDS.labels(str(self.step)).observe(time.monotonic() - self.step_started)
            self.step = None

    def estimate_completion(self, overall: float) -> datetime:
        """Extrapolate from elapsed time once progress says enough; before that use recent papers' mean."""
        now = utc_now()
        elapsed = now - (self.paper.started_at or now)
        if overall >= 0.05:
            remaining = elapsed * ((1 - overall) / overall)
        else:
            remaining = max(self.prior - elapsed, timedelta(seconds=1))
        return now + remaining


# --- accounts ---


def refresh_tokens_blacklist(*, user_id: int) -> int:
    """Blacklist every unexpired refresh token issued to a user; return how many were added."""
    outstanding = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    return len(created)
