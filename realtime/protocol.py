"""The client protocol of /ws/papers: close codes, the error a client message earns, and the parsing of frames."""

import json
import uuid
from typing import Any

from .events import PAPER_EVENT_TYPES

TOPIC_PAPERS = "papers"
TOPIC_SYSTEM = "system"
TOPICS = (TOPIC_PAPERS, TOPIC_SYSTEM)
MESSAGE_TYPES = ("authenticate", "subscribe", "unsubscribe", "ping")

# Close codes (docs/protocol.md); 1009 (message too big) comes from the server's WebSocket layer itself.
CLOSE_AUTHENTICATION_FAILED = 4001
CLOSE_AUTHENTICATION_EXPIRED = 4002
CLOSE_AUTHENTICATION_TIMEOUT = 4003
CLOSE_ACCESS_REVOKED = 4004
CLOSE_RATE_LIMITED = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4009
CLOSE_TOO_SLOW = 4011
# 1013 (try again later) is the standard code, but Daphne's WebSocket layer (Autobahn) lets a server send only 1000
# and 3000-4999, so it is mirrored as 4013.
CLOSE_TRY_AGAIN_LATER = 4013


class ProtocolError(Exception):
    """A client message the server answers with an error reply, and for some errors a close code."""

    def __init__(self, code: str, message: str, *, close: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


# Why a connection was closed by revocation, as clients read it ("user.revoked" reasons, and a session's logout).
REVOKED_MESSAGES = {
    "inactive": "The account is no longer active.",
    "password_changed": "The account's password was changed; log in again.",
    "logged_out": "The session was logged out; log in again.",
}


def access_revoked(reason: str | None) -> ProtocolError:
    """The error that closes a connection whose access was revoked (an unknown reason reads as "inactive")."""
    return ProtocolError("access_revoked", REVOKED_MESSAGES.get(reason, REVOKED_MESSAGES["inactive"]),
                         close=CLOSE_ACCESS_REVOKED)


def too_slow() -> ProtocolError:
    """The error that closes a connection whose socket cannot keep up (it resumes with since)."""
    return ProtocolError("too_slow", "The connection cannot keep up; resume with since.", close=CLOSE_TOO_SLOW)


def parse_frame(text_data: str | None) -> dict[str, Any]:
    """Decode one frame as a JSON object."""
    if text_data is None:
        raise ProtocolError("invalid_message", "Binary frames are not supported; send JSON text.")
    try:
        content = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser allows
        raise ProtocolError("invalid_json", "The message is not valid JSON.") from None
    if not isinstance(content, dict):
        raise ProtocolError("invalid_message", "A message must be a JSON object.")
    return content


def parse_request_id(content: dict[str, Any]) -> Any:
    """The optional id a client tags a message with, echoed in its reply: a string or an integer."""
    request_id = content.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, (str, int))):
        raise ProtocolError("invalid_message", '"id" must be a string or an integer.')
    return request_id


def parse_type(content: dict[str, Any]) -> str:
    """The message type, one of MESSAGE_TYPES."""
    message_type = content.get("type")
    if not isinstance(message_type, str) or message_type not in MESSAGE_TYPES:
        raise ProtocolError("unknown_type", f"Unknown message type; expected one of: {', '.join(MESSAGE_TYPES)}.")
    return message_type


def parse_token(content: dict[str, Any]) -> str:
    """The access token of an authenticate message."""
    token = content.get("token")
    if not isinstance(token, str) or not token:
        raise ProtocolError("invalid_message", '"token" must be a non-empty string.')
    return token


def parse_target(content: dict[str, Any]) -> dict[str, str]:
    """Exactly one of paper_id (a UUID) or topic ("papers" or "system")."""
    paper_id, topic = content.get("paper_id"), content.get("topic")
    if (paper_id is None) == (topic is None):
        raise ProtocolError("invalid_message", 'Give exactly one of "paper_id" or "topic".')
    if topic is not None:
        if topic not in TOPICS:
            raise ProtocolError("invalid_message", f'"topic" must be one of: {", ".join(TOPICS)}.')
        return {"topic": topic}
    bad = ProtocolError("invalid_message", '"paper_id" must be a UUID string.')
    if not isinstance(paper_id, str):
        raise bad
    try:
        return {"paper_id": str(uuid.UUID(paper_id))}
    except ValueError:
        raise bad from None


def parse_event_types(content: dict[str, Any]) -> frozenset[str] | None:
    """The optional event_types filter: a non-empty list of paper event types."""
    if content.get("topic") == TOPIC_SYSTEM:
        if "event_types" in content:
            raise ProtocolError("invalid_message", 'Topic "system" carries only system_status; omit "event_types".')
        return None
    types = content.get("event_types")
    if types is None:
        return None
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ProtocolError("invalid_message", '"event_types" must be a non-empty list of strings.')
    unknown = sorted(set(types) - set(PAPER_EVENT_TYPES))
    if unknown:
        raise ProtocolError(
            "invalid_message", f'Unknown event types {unknown}; known: {", ".join(PAPER_EVENT_TYPES)}.'
        )
    return frozenset(types)


def parse_since(content: dict[str, Any], target: dict[str, str]) -> int | None:
    """The optional resume point of a paper subscription: the last seq the client saw of it."""
    since = content.get("since")
    if "since" in content and "paper_id" not in target:
        raise ProtocolError("invalid_message", '"since" applies to paper subscriptions only.')
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or not 0 <= since < 2**63):
        raise ProtocolError("invalid_message", '"since" must be a non-negative integer (the last seq you saw).')
    return since


def listed(event_types: frozenset[str] | None) -> list[str] | None:
    """An event_types filter as a reply shows it: sorted, or null for all types."""
    return sorted(event_types) if event_types is not None else None


def error_reply(code: str, message: str) -> dict[str, Any]:
    """The error reply to a client message."""
    return {"type": "error", "code": code, "message": message}
