"""A Python client of the /ws/papers protocol (docs/python-client.md): asyncio and `websockets`, no Django."""

from .backoff import Backoff
from .client import NotFoundError, PaperClient, PaperClientError, RequestError
from .events import (
    FINAL_STATUSES,
    Authenticated,
    Disconnected,
    EntityExtracted,
    Event,
    PaperError,
    PaperEvent,
    ProgressUpdated,
    ProtocolError,
    RelationshipExtracted,
    Snapshot,
    StatusChanged,
    Subscribed,
    SystemStatus,
    Unsubscribed,
    parse_event,
)
from .tokens import AuthenticationError

__all__ = [
    "FINAL_STATUSES", "Authenticated", "AuthenticationError", "Backoff", "Disconnected", "EntityExtracted", "Event",
    "NotFoundError", "PaperClient", "PaperClientError", "PaperError", "PaperEvent", "ProgressUpdated",
    "ProtocolError", "RelationshipExtracted", "RequestError", "Snapshot", "StatusChanged", "Subscribed",
    "SystemStatus", "Unsubscribed", "parse_event",
]
