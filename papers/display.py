"""How papers are shown to people: step labels and error messages, one table each for templates and scripts.

The pages render these through papers/templatetags/paper_display.py and hand the same tables to
static/paperpipeline/format.js as JSON, so a page rendered live and the same page reloaded read alike."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .models import PaperStatus, PipelineStep

NO_VALUE = "—"

STEP_LABELS = {
    PipelineStep.TEXT_EXTRACTION: "Text extraction",
    PipelineStep.ENTITY_EXTRACTION: "Entity extraction",
    PipelineStep.RELATIONSHIP_EXTRACTION: "Relationship extraction",
}

# Every code a paper fails with (docs/protocol.md, "error") and every refusal an action meets, in words.
ERROR_MESSAGES = {
    "unreadable_pdf": "The PDF could not be read.",
    "empty_document": "The document contains no text to extract.",
    "unsupported_type": "Only PDF and plain-text files are supported.",
    "decode_failed": "The text file is not valid UTF-8.",
    "text_extraction_failed": "Text could not be extracted from the file.",
    "processing_failed": "Processing failed unexpectedly.",
    "queue_unavailable": "The paper could not be queued: the task queue is unavailable.",
    "worker_lost": "The workers processing this paper stopped too many times.",
    "stalled": "Processing stalled and was stopped.",
    "too_many_pages": "The PDF has more pages than allowed.",
    "text_too_long": "The document has more text than allowed.",
    "time_limit_exceeded": "Processing took longer than allowed.",
    "out_of_memory": "Processing needed more memory than allowed.",
    "already_active": "The paper is already being processed.",
    "not_active": "Only queued or processing papers can be cancelled.",
    "not_found": "This paper no longer exists, or you may not see it.",
    "permission_denied": "You may not do that. Reload the page and sign in again if needed.",
    "not_authenticated": "Your session has ended. Reload the page and sign in again.",
    "throttled": "Too many requests. Wait a moment and try again.",
    "network": "The server could not be reached. Try again.",
    "unknown": "Something went wrong.",
}


def step_label(step: str, status: str) -> str:
    """The step a paper is at, in words; none unless it is processing (a finished paper has no current step)."""
    if status != PaperStatus.PROCESSING or not step:
        return NO_VALUE
    return STEP_LABELS.get(step, step.replace("_", " ").capitalize())


def error_text(code: str) -> str:
    """The human message of an error code (the code's own words for one this table does not know)."""
    return ERROR_MESSAGES.get(code) or ERROR_MESSAGES["unknown"]


def confidence_text(value: Any) -> str:
    """A confidence with two decimals, rounded half up from its shortest decimal form (as format.js does)."""
    return str(Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def percent_text(fraction: Any) -> str:
    """A fraction as a whole percentage, rounded half up (as format.js does)."""
    percent = Decimal(repr(float(fraction or 0))) * 100
    return f"{percent.quantize(Decimal('1'), rounding=ROUND_HALF_UP)}%"


def entity_order(entity: Any) -> tuple:
    """Entities by confidence, highest first, then name and id (format.js's rowOrder)."""
    return (-entity.confidence, entity.name, str(entity.pk))


def relationship_order(relationship: Any) -> tuple:
    """Relationships by confidence, highest first, then "source type target" and id (format.js's rowOrder)."""
    key = f"{relationship.source.name} {relationship.relationship_type} {relationship.target.name}"
    return (-relationship.confidence, key, str(relationship.pk))


def tables() -> dict[str, Any]:
    """The tables format.js reads, as the pages embed them (json_script)."""
    return {"steps": {str(k): v for k, v in STEP_LABELS.items()}, "errors": ERROR_MESSAGES, "none": NO_VALUE}
