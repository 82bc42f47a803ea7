"""JSON schemas of the six event types, written from the specification's examples; emitters are checked against them."""

import jsonschema

from papers.pipeline.types import ENTITY_TYPES, RELATIONSHIP_TYPES

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


def _logged(schema: dict) -> dict:
    """A paper event as logged and sent: the specification's fields plus seq and event_id."""
    props = {**schema["properties"], "seq": {"type": "integer", "minimum": 1}, "event_id": UUID}
    return {**schema, "properties": props, "required": list(props)}


WIRE_SCHEMAS = {
    name: schema if name == "system_status" else _logged(schema) for name, schema in SPEC_SCHEMAS.items()
}


def assert_wire_event(payload: dict) -> None:
    """Fail unless payload is a valid event as the server sends it."""
    assert "event_type" in payload, payload
    jsonschema.validate(payload, WIRE_SCHEMAS[payload["event_type"]])
