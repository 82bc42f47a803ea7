"""JSON schemas of the six event types, written from the specification's examples, and of the events as the server
sends them (the specification's fields, the extra fields of docs/protocol.md, and seq and event_id); emitters are
checked against them."""

import jsonschema

from papers.pipeline.types import ENTITY_SIGNALS, ENTITY_TYPES, RELATIONSHIP_TYPES

TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"}
UUID = {"type": "string", "pattern": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
UNIT = {"type": "number", "minimum": 0, "maximum": 1}
STATUS = {"enum": ["uploaded", "queued", "processing", "completed", "failed", "cancelled"]}
STEP = {"enum": ["text_extraction", "entity_extraction", "relationship_extraction"]}


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


def assert_wire_event(payload: dict) -> None:
    """Fail unless payload is a valid event as the server sends it."""
    assert "event_type" in payload, payload
    jsonschema.validate(payload, WIRE_SCHEMAS[payload["event_type"]])
