"""Papers, what was extracted from them, and the per-paper event log."""

import uuid

from django.conf import settings
from django.db import models

from .pipeline.types import ENTITY_TYPES, RELATIONSHIP_TYPES


class PaperStatus(models.TextChoices):
    """Lifecycle of a paper; the values are the wire values of status_changed events."""

    UPLOADED = "uploaded"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (PaperStatus.QUEUED, PaperStatus.PROCESSING)
FINAL_STATUSES = (PaperStatus.COMPLETED, PaperStatus.FAILED, PaperStatus.CANCELLED)


class PipelineStep(models.TextChoices):
    """Steps of the pipeline, in order."""

    TEXT_EXTRACTION = "text_extraction"
    ENTITY_EXTRACTION = "entity_extraction"
    RELATIONSHIP_EXTRACTION = "relationship_extraction"


# What the lifecycle services write: never the owner, title or file, so their saves do not touch access.
LIFECYCLE_FIELDS = (
    "status", "status_message", "task_id", "attempts", "progress", "current_step", "step_progress",
    "estimated_completion", "error_code", "error_message", "started_at", "completed_at", "updated_at",
)

DEFAULT_STATUS_MESSAGES = {
    "uploaded": "Paper uploaded",
    "queued": "Queued for processing",
    "processing": "Processing started",
    "completed": "Processing completed",
    "failed": "Processing failed",
    "cancelled": "Processing cancelled",
}

EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt"}


def paper_upload_to(paper: "Paper", filename: str) -> str:
    """A random storage name with the extension of the sniffed type: the uploader's name never reaches the disk."""
    return f"papers/{uuid.uuid4().hex}{EXTENSIONS.get(paper.content_type, '.txt')}"


class Paper(models.Model):
    """An uploaded paper and where its processing stands."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="papers")
    title = models.CharField(max_length=300, blank=True)
    # Served only by the authorized download (papers.views.paper_file_response), never from MEDIA_URL.
    file = models.FileField(upload_to=paper_upload_to)
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=PaperStatus.choices, default=PaperStatus.UPLOADED, db_index=True)
    progress = models.FloatField(default=0.0)
    current_step = models.CharField(max_length=40, choices=PipelineStep.choices, blank=True)
    step_progress = models.FloatField(default=0.0)
    estimated_completion = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    # Why the status is what it is; a status change's event carries it (or the status's default message).
    status_message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # Deliveries of the current task to a worker; more than PAPER_MAX_ATTEMPTS means workers keep dying on it.
    attempts = models.PositiveSmallIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    text_length = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.title or self.original_filename or str(self.id)


class Entity(models.Model):
    """A named thing found in a paper: a model, dataset, metric, task or method."""

    Type = models.TextChoices("EntityType", [(name, name) for name in ENTITY_TYPES])

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="entities")
    entity_type = models.CharField(max_length=20, choices=Type.choices)
    name = models.CharField(max_length=200)
    confidence = models.FloatField()
    mentions = models.PositiveIntegerField(default=1)
    # How central the entity is to the paper, in [0, 1]; key: one of the paper's key entities; signals: where it
    # stood out, a list of ENTITY_SIGNALS values (papers.services validates all three before storing them).
    salience = models.FloatField(default=0.0)
    key = models.BooleanField(default=False)
    signals = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["entity_type", "name"]
        verbose_name_plural = "entities"
        constraints = [
            models.UniqueConstraint(fields=["paper", "entity_type", "name"], name="entity_unique_per_paper"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type}: {self.name}"


class Relationship(models.Model):
    """A typed, directed link between two entities of one paper."""

    Type = models.TextChoices("RelationshipType", [(name, name) for name in RELATIONSHIP_TYPES])

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="relationships")
    relationship_type = models.CharField(max_length=30, choices=Type.choices)
    source = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="outgoing")
    target = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="incoming")
    confidence = models.FloatField()
    evidence = models.TextField(blank=True)
    # A result record (EVALUATED_ON): the METRIC entity it was measured with, and the score as written ("71.8%");
    # empty when the extractor gave none. A metric entity deleted on its own leaves the score.
    metric = models.ForeignKey(
        Entity, on_delete=models.SET_NULL, null=True, blank=True, related_name="measured_results"
    )
    score = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["relationship_type", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["paper", "relationship_type", "source", "target"], name="relationship_unique_per_paper"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source.name} {self.relationship_type} {self.target.name}"


class PaperEvent(models.Model):
    """One event of a paper's log, stored with its wire payload; the source of replay and recovery."""

    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["paper", "seq"]
        constraints = [models.UniqueConstraint(fields=["paper", "seq"], name="event_seq_unique_per_paper")]

    def __str__(self) -> str:
        return f"{self.paper_id}#{self.seq} {self.event_type}"
