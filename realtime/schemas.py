"""JSON Schemas of /ws/papers: the six event types as the specification writes them and as the server sends them
(its fields, the extra fields of docs/protocol.md, seq and event_id), the client's messages and the server's replies.

The one source of both the AsyncAPI document (realtime.asyncapi) and the tests that check every emitter against it;
where the protocol fixes an object's fields, any other field fails the schema."""

from papers.pipeline.types import ENTITY_SIGNALS, ENTITY_TYPES, RELATIONSHIP_TYPES

from .events import PAPER_EVENT_TYPES
from .protocol import TOPIC_PAPERS, TOPIC_SYSTEM

TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"}
UUID = {"type": "string", "pattern": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
UNIT = {"type": "number", "minimum": 0, "maximum": 1}
STATUSES = ["uploaded", "queued", "processing", "completed", "failed", "cancelled"]
STEPS = ["text_extraction", "entity_extraction", "relationship_extraction"]
STATUS = {"enum": STATUSES}
STEP = {"enum": STEPS}


def _event(event_type: str, properties: dict, *, paper: bool = True) -> dict:
    base = {"event_type": {"const": event_type}, "timestamp": TIMESTAMP}
    if paper:
        base["paper_id"] = UUID
    props = {**base, **properties}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


SPEC_SCHEMAS = {
    "status_changed": _event(
        "status_changed", {"old_status": STATUS, "new_status": STATUS, "message": {"type": "string"}}
    ),
    "progress_updated": _event(
        "progress_updated",
        {"progress": UNIT, "step": STEP, "step_progress": UNIT, "estimated_completion": TIMESTAMP},
    ),
    "entity_extracted": _event(
        "entity_extracted",
        {
            "entity_id": {"type": "string", "minLength": 1},
            "entity_type": {"enum": list(ENTITY_TYPES)},
            "entity_name": {"type": "string", "minLength": 1},
            "confidence": UNIT,
        },
    ),
    "relationship_extracted": _event(
        "relationship_extracted",
        {
            "relationship_id": {"type": "string", "minLength": 1},
            "relationship_type": {"enum": list(RELATIONSHIP_TYPES)},
            "source_id": {"type": "string", "minLength": 1},
            "target_id": {"type": "string", "minLength": 1},
            "confidence": UNIT,
        },
    ),
    "error": _event(
        "error",
        {
            "error_code": {"type": "string", "minLength": 1},
            "error_message": {"type": "string", "minLength": 1},
            "details": {
                "type": "object",
                "properties": {"step": {"type": "string"}, "task_id": {"type": "string"}},
                "required": ["step", "task_id"],
            },
        },
    ),
    "system_status": _event(
        "system_status",
        {
            "queue_size": {"type": "integer", "minimum": 0},
            "active_workers": {"type": "integer", "minimum": 0},
            "processing_rate": {"type": "number", "minimum": 0},
            "system_load": {"type": "number", "minimum": 0},
        },
        paper=False,
    ),
}


NAME_OR_NULL = {"type": ["string", "null"], "minLength": 1}

# The fields the server adds after the specification's, per event type (docs/protocol.md documents each).
EXTRA_PROPERTIES = {
    "entity_extracted": {
        "mentions": {"type": "integer", "minimum": 1},
        "salience": UNIT,
        "key": {"type": "boolean"},
        "signals": {"type": "array", "items": {"enum": list(ENTITY_SIGNALS)}, "uniqueItems": True, "maxItems": 5},
    },
    "relationship_extracted": {
        "metric_id": NAME_OR_NULL,
        "metric": NAME_OR_NULL,
        "score": {"type": ["string", "null"], "minLength": 1, "maxLength": 32},
    },
}
# A metric is named exactly when its id is given.
_METRIC_BOTH_OR_NEITHER = {
    "oneOf": [
        {"properties": {"metric_id": {"type": "null"}, "metric": {"type": "null"}}},
        {"properties": {"metric_id": {"type": "string"}, "metric": {"type": "string"}}},
    ]
}


def _with_extras(name: str, schema: dict) -> dict:
    """An event as the server builds it: the specification's fields, then its extra fields, all required."""
    props = {**schema["properties"], **EXTRA_PROPERTIES.get(name, {})}
    extended = {**schema, "properties": props, "required": list(props)}
    return {**extended, "allOf": [_METRIC_BOTH_OR_NEITHER]} if name == "relationship_extracted" else extended


def _logged(schema: dict) -> dict:
    """A paper event as logged and sent: its fields plus seq and event_id."""
    props = {**schema["properties"], "seq": {"type": "integer", "minimum": 1}, "event_id": UUID}
    return {**schema, "properties": props, "required": list(props)}


EVENT_SCHEMAS = {name: _with_extras(name, schema) for name, schema in SPEC_SCHEMAS.items()}
WIRE_SCHEMAS = {
    name: schema if name == "system_status" else _logged(schema) for name, schema in EVENT_SCHEMAS.items()
}



# --- Client messages (docs/protocol.md, "Client → server"). The server ignores keys it does not know, so these
# schemas leave other keys open; the replies below are closed. ---

REQUEST_ID = {"type": ["string", "integer"], "description": "Any tag; the reply echoes it."}
# The server accepts any spelling Python's UUID parser does and answers with the canonical lower-case form.
UUID_ANY_CASE = {"type": "string", "format": "uuid"}
SEQ = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
EVENT_TYPES_FILTER = {
    "type": "array", "minItems": 1, "items": {"enum": list(PAPER_EVENT_TYPES)},
    "description": "Only these paper event types (default: all of them).",
}


def _message(message_type: str, properties: dict, required: tuple[str, ...] = (), *, closed: bool) -> dict:
    """An object tagged "type": message_type with an optional id; closed: no other field allowed."""
    props = {"type": {"const": message_type}, **properties, "id": REQUEST_ID}
    schema = {"type": "object", "properties": props, "required": ["type", *required]}
    return {**schema, "additionalProperties": False} if closed else schema


def _one_target(message_type: str, *, paper_extra: dict, papers_extra: dict) -> dict:
    """A message about exactly one of: a paper (paper_id), topic "papers", topic "system" (which takes no filter)."""
    paper = _message(message_type, {"paper_id": UUID_ANY_CASE, **paper_extra}, ("paper_id",), closed=False)
    papers = _message(message_type, {"topic": {"const": TOPIC_PAPERS}, **papers_extra}, ("topic",), closed=False)
    system = _message(message_type, {"topic": {"const": TOPIC_SYSTEM}}, ("topic",), closed=False)
    papers["not"] = {"required": ["since"]}  # since resumes a paper only
    system["not"] = {"anyOf": [{"required": ["since"]}, {"required": ["event_types"]}]}
    return {"oneOf": [paper, papers, system]}


CLIENT_SCHEMAS = {
    "authenticate": _message("authenticate", {"token": {"type": "string", "minLength": 1}}, ("token",), closed=False),
    "subscribe": _one_target(
        "subscribe",
        paper_extra={
            "event_types": EVENT_TYPES_FILTER,
            "since": {**SEQ, "description": "Resume: the highest seq up to which the client has every event."},
        },
        papers_extra={"event_types": EVENT_TYPES_FILTER},
    ),
    "unsubscribe": _one_target("unsubscribe", paper_extra={}, papers_extra={}),
    "ping": _message("ping", {}, closed=False),
}

# --- Server replies and notices (docs/protocol.md): every field fixed, no other allowed. ---

LISTED_FILTER = {"oneOf": [{"type": "array", "items": {"enum": list(PAPER_EVENT_TYPES)}}, {"type": "null"}],
                 "description": "The subscription's filter, sorted; null for every type."}
SNAPSHOT = {
    "type": "object",
    "properties": {
        "paper_id": UUID,
        "title": {"type": "string"},
        "status": STATUS,
        "progress": UNIT,
        "step": {"enum": ["", *STEPS]},
        "step_progress": UNIT,
        "estimated_completion": {"oneOf": [TIMESTAMP, {"type": "null"}]},
        "error_code": {"type": "string"},
        "error_message": {"type": "string"},
        "seq": {**SEQ, "description": "The seq of the paper's newest event when the snapshot was taken."},
    },
    "additionalProperties": False,
}
SNAPSHOT["required"] = list(SNAPSHOT["properties"])
RECOVERY = {
    "type": "object",
    "properties": {
        "since": SEQ,
        "complete": {"type": "boolean"},
        "replayed": {"type": "integer", "minimum": 0},
        "reason": {"enum": ["pruned", "unknown_seq", "too_many"]},
        "first_available_seq": {"oneOf": [SEQ, {"type": "null"}]},
    },
    "required": ["since", "complete", "replayed"],
    "additionalProperties": False,
}
ERROR_CODES = [
    "invalid_json", "invalid_message", "unknown_type", "not_authenticated", "not_found", "not_subscribed",
    "internal_error", "authentication_failed", "authentication_expired", "authentication_timeout", "access_revoked",
    "rate_limited", "too_many_subscriptions", "too_many_connections", "too_slow", "too_many_unauthenticated",
    "server_busy",
]
USER = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "username": {"type": "string"}},
    "required": ["id", "username"],
    "additionalProperties": False,
}

SERVER_SCHEMAS = {
    "authenticated": _message(
        "authenticated",
        {"user": USER, "expires_at": {**TIMESTAMP, "description": "When the access token expires; absent for a "
                                                                   "browser authenticated by its session."}},
        ("user",), closed=True,
    ),
    "subscribed": {
        "oneOf": [
            _message("subscribed", {"paper_id": UUID, "event_types": LISTED_FILTER, "snapshot": SNAPSHOT,
                                    "recovery": RECOVERY}, ("paper_id", "event_types", "snapshot"), closed=True),
            _message("subscribed", {"topic": {"enum": [TOPIC_PAPERS, TOPIC_SYSTEM]}, "event_types": LISTED_FILTER},
                     ("topic", "event_types"), closed=True),
        ]
    },
    "unsubscribed": {
        "oneOf": [
            _message("unsubscribed", {"paper_id": UUID}, ("paper_id",), closed=True),
            _message("unsubscribed", {"topic": {"enum": [TOPIC_PAPERS, TOPIC_SYSTEM]}}, ("topic",), closed=True),
            # Sent by the server unasked when the paper was deleted or the user may no longer see it.
            _message("unsubscribed", {"paper_id": UUID, "reason": {"enum": ["deleted", "access_changed"]}},
                     ("paper_id", "reason"), closed=True),
        ]
    },
    # Sent by the server unasked to topic "papers" subscribers who could see a paper that was deleted.
    "paper_deleted": _message("paper_deleted", {"paper_id": UUID}, ("paper_id",), closed=True),
    "pong": _message("pong", {"timestamp": TIMESTAMP}, ("timestamp",), closed=True),
    "error": _message("error", {"code": {"enum": ERROR_CODES}, "message": {"type": "string", "minLength": 1}},
                      ("code", "message"), closed=True),
    "reauthenticate": _message(
        "reauthenticate",
        {"reason": {"const": "token_expiring"},
         "close_at": {**TIMESTAMP, "description": "When the connection closes (4002) without a fresh token."}},
        ("reason", "close_at"), closed=True,
    ),
}
# The server's own notices carry no id: nobody asked.
del SERVER_SCHEMAS["reauthenticate"]["properties"]["id"]
del SERVER_SCHEMAS["paper_deleted"]["properties"]["id"]
del SERVER_SCHEMAS["unsubscribed"]["oneOf"][2]["properties"]["id"]
