"""The six event types of the specification, as small immutable dataclasses with one to_dict().

Each carries exactly the specification's fields; entity_extracted and relationship_extracted add the extra fields
documented in docs/protocol.md after them (the specification's fields are unchanged)."""

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

STATUS_CHANGED = "status_changed"
PROGRESS_UPDATED = "progress_updated"
ENTITY_EXTRACTED = "entity_extracted"
RELATIONSHIP_EXTRACTED = "relationship_extracted"
ERROR = "error"
SYSTEM_STATUS = "system_status"

PAPER_EVENT_TYPES = (STATUS_CHANGED, PROGRESS_UPDATED, ENTITY_EXTRACTED, RELATIONSHIP_EXTRACTED, ERROR)
EVENT_TYPES = (*PAPER_EVENT_TYPES, SYSTEM_STATUS)


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def format_timestamp(value: datetime) -> str:
    """Format a datetime as RFC 3339 UTC ending in Z, the only timestamp form on the wire."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(payload: dict[str, Any]) -> str:
    """Encode a wire payload as compact JSON; called once per broadcast, never per recipient."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events: a type tag and a timestamp."""

    event_type: ClassVar[str]
    timestamp: datetime = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        """Return the wire form, with the specification's field names and value types."""
        data: dict[str, Any] = {"event_type": self.event_type}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self._optional_keys:
                continue  # an event not yet logged has no seq or event_id: the key is absent, not null
            data[f.name] = _wire_value(value)
        return _with_order(data, self._leading_keys, self._optional_keys)

    _leading_keys: ClassVar[tuple[str, ...]] = ("event_type", "timestamp")
    _optional_keys: ClassVar[tuple[str, ...]] = ()


def _wire_value(value: Any) -> Any:
    """Convert one field value to its JSON form."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple):  # a list in JSON: the payload compares equal to its stored, decoded copy
        return [_wire_value(item) for item in value]
    return value


def _with_order(data: dict[str, Any], leading: tuple[str, ...], trailing: tuple[str, ...]) -> dict[str, Any]:
    """Put the identifying keys first so payloads read like the specification's examples, the log's last."""
    ordered = {key: data[key] for key in leading if key in data}
    ordered.update((key, value) for key, value in data.items() if key not in ordered and key not in trailing)
    ordered.update((key, data[key]) for key in trailing if key in data)
    return ordered


@dataclass(frozen=True, kw_only=True)
class PaperEvent(Event):
    """An event about one paper; once logged it carries its seq in the paper's log and its event_id."""

    paper_id: uuid.UUID | str
    seq: int | None = None
    event_id: uuid.UUID | str | None = None
    _leading_keys: ClassVar[tuple[str, ...]] = ("event_type", "paper_id", "timestamp")
    _optional_keys: ClassVar[tuple[str, ...]] = ("seq", "event_id")


@dataclass(frozen=True, kw_only=True)
class StatusEvent(PaperEvent):
    """A paper's status changed."""

    event_type: ClassVar[str] = STATUS_CHANGED
    old_status: str
    new_status: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ProgressEvent(PaperEvent):
    """Processing advanced: overall progress, the current step and its own progress."""

    event_type: ClassVar[str] = PROGRESS_UPDATED
    progress: float
    step: str
    step_progress: float
    estimated_completion: datetime


@dataclass(frozen=True, kw_only=True)
class EntityEvent(PaperEvent):
    """An entity was extracted; after the specification's fields, how often and how prominently it occurs."""

    event_type: ClassVar[str] = ENTITY_EXTRACTED
    entity_id: str
    entity_type: str
    entity_name: str
    confidence: float
    mentions: int
    salience: float
    key: bool
    signals: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RelationshipEvent(PaperEvent):
    """A relationship between two extracted entities was found; a result record adds its metric and score."""

    event_type: ClassVar[str] = RELATIONSHIP_EXTRACTED
    relationship_id: str
    relationship_type: str
    source_id: str
    target_id: str
    confidence: float
    metric_id: str | None
    metric: str | None
    score: str | None


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(PaperEvent):
    """Processing failed; details carries at least step and task_id."""

    event_type: ClassVar[str] = ERROR
    error_code: str
    error_message: str
    details: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class SystemStatusEvent(Event):
    """System-wide figures: broker queue size, live workers, papers per minute, load per core."""

    event_type: ClassVar[str] = SYSTEM_STATUS
    queue_size: int
    active_workers: int
    processing_rate: float
    system_load: float
