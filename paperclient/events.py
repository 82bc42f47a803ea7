"""Typed messages of /ws/papers (docs/protocol.md): one frozen dataclass per event type and per server reply.

Parsing is tolerant of what a newer server may add: fields this module does not know are kept in `extra`,
never an error. A missing field the protocol requires is a ProtocolError."""

from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

FINAL_STATUSES = ("completed", "failed", "cancelled")


class ProtocolError(ValueError):
    """The server sent something this client cannot read as the protocol describes it."""


def parse_timestamp(value: Any) -> datetime:
    """Read an RFC 3339 UTC timestamp ending in Z."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ProtocolError(f"not an RFC 3339 UTC timestamp: {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ProtocolError(f"not an RFC 3339 UTC timestamp: {value!r}") from exc


def _build(cls, payload: dict, skip: tuple[str, ...] = ()):
    """An instance of dataclass cls from payload's fields; unknown keys go to `extra`, missing ones raise."""
    known = {f.name for f in fields(cls)} - {"extra"}
    values = {}
    for f in fields(cls):
        if f.name == "extra" or f.name in skip:
            continue
        if f.name not in payload:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue  # optional on the wire
            raise ProtocolError(f"{cls.__name__} without {f.name!r}")
        values[f.name] = payload[f.name]
    extra = {k: v for k, v in payload.items() if k not in known and k not in ("event_type", "type", *skip)}
    return cls(**values, extra=extra)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Any data event: its timestamp, and what the server sent that this client does not know."""

    event_type: ClassVar[str] = ""
    timestamp: datetime
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.timestamp, str):
            object.__setattr__(self, "timestamp", parse_timestamp(self.timestamp))


@dataclass(frozen=True, kw_only=True)
class PaperEvent(Event):
    """An event of one paper, with its per-paper seq and its event_id."""

    paper_id: str
    seq: int
    event_id: str


@dataclass(frozen=True, kw_only=True)
class StatusChanged(PaperEvent):
    event_type: ClassVar[str] = "status_changed"
    old_status: str
    new_status: str
    message: str

    @property
    def final(self) -> bool:
        """Whether the paper reached a status it leaves only when reprocessed."""
        return self.new_status in FINAL_STATUSES


@dataclass(frozen=True, kw_only=True)
class ProgressUpdated(PaperEvent):
    event_type: ClassVar[str] = "progress_updated"
    progress: float
    step: str
    step_progress: float
    estimated_completion: datetime

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.estimated_completion, str):
            object.__setattr__(self, "estimated_completion", parse_timestamp(self.estimated_completion))


@dataclass(frozen=True, kw_only=True)
class EntityExtracted(PaperEvent):
    event_type: ClassVar[str] = "entity_extracted"
    entity_id: str
    entity_type: str
    entity_name: str
    confidence: float
    mentions: int | None = None
    salience: float | None = None
    key: bool | None = None
    signals: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RelationshipExtracted(PaperEvent):
    event_type: ClassVar[str] = "relationship_extracted"
    relationship_id: str
    relationship_type: str
    source_id: str
    target_id: str
    confidence: float
    metric_id: str | None = None
    metric: str | None = None
    score: str | None = None


@dataclass(frozen=True, kw_only=True)
class PaperError(PaperEvent):
    event_type: ClassVar[str] = "error"
    error_code: str
    error_message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SystemStatus(Event):
    event_type: ClassVar[str] = "system_status"
    queue_size: int
    active_workers: int
    processing_rate: float
    system_load: float


EVENT_CLASSES: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (StatusChanged, ProgressUpdated, EntityExtracted, RelationshipExtracted, PaperError, SystemStatus)
}


def parse_event(payload: dict) -> Event | None:
    """The typed event of a wire payload; None for an event type this client does not know (a newer server)."""
    cls = EVENT_CLASSES.get(payload.get("event_type"))
    if cls is None:
        return None
    try:
        event = _build(cls, payload)
    except TypeError as exc:
        raise ProtocolError(str(exc)) from exc
    if isinstance(event, EntityExtracted) and isinstance(event.signals, list):
        object.__setattr__(event, "signals", tuple(event.signals))
    if isinstance(event, PaperEvent) and not (isinstance(event.seq, int) and event.seq >= 1):
        raise ProtocolError(f"bad seq {event.seq!r}")
    return event


# --- Replies and notices of the server, and what the client itself reports in its stream. ---


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """A paper's state when the server answered a subscription (its newest event's seq included)."""

    paper_id: str
    title: str
    status: str
    progress: float
    step: str
    step_progress: float
    estimated_completion: str | None
    error_code: str
    error_message: str
    seq: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """How a resume with `since` went: complete, or why not (pruned, unknown_seq, too_many)."""

    since: int
    complete: bool
    replayed: int
    reason: str | None = None
    first_available_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Subscribed:
    """The server confirmed a subscription: a paper's (with its snapshot) or a topic's."""

    paper_id: str | None = None
    topic: str | None = None
    event_types: tuple[str, ...] | None = None
    snapshot: Snapshot | None = None
    recovery: Recovery | None = None

    @classmethod
    def from_wire(cls, payload: dict) -> "Subscribed":
        snapshot = payload.get("snapshot")
        recovery = payload.get("recovery")
        types = payload.get("event_types")
        return cls(
            paper_id=payload.get("paper_id"), topic=payload.get("topic"),
            event_types=tuple(types) if types is not None else None,
            snapshot=_build(Snapshot, snapshot) if isinstance(snapshot, dict) else None,
            recovery=_build(Recovery, recovery) if isinstance(recovery, dict) else None,
        )


@dataclass(frozen=True, kw_only=True)
class Unsubscribed:
    """The server ended a paper subscription by itself: the paper was deleted or the user may no longer see it."""

    paper_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Authenticated:
    """The connection acts for this user until expires_at (a renewal sends another)."""

    user_id: int
    username: str
    expires_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Disconnected:
    """The connection dropped; the client reconnects after `retry_in` seconds and resumes every paper."""

    code: int | None
    reason: str
    retry_in: float


Message = Event | Subscribed | Unsubscribed | Authenticated | Disconnected
