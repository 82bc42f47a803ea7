"""The OpenAPI document's paper events (GET /api/papers/{id}/events/) are the WebSocket's: realtime.schemas."""

import copy
from typing import Any

from .events import PAPER_EVENT_TYPES
from .schemas import WIRE_SCHEMAS


def component_name(event_type: str) -> str:
    """The component a wire event's schema is published as in both documents: status_changed → StatusChangedEvent."""
    return "".join(part.title() for part in event_type.split("_")) + "Event"


def add_paper_event_schemas(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the PaperEvent component, one of the five logged wire events."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for event_type in PAPER_EVENT_TYPES:
        schemas[component_name(event_type)] = copy.deepcopy(WIRE_SCHEMAS[event_type])
    schemas["PaperEvent"] = {
        "description": "A logged paper event, byte for byte the payload /ws/papers sent (docs/asyncapi.yaml).",
        "oneOf": [{"$ref": f"#/components/schemas/{component_name(name)}"} for name in PAPER_EVENT_TYPES],
        "discriminator": {"propertyName": "event_type", "mapping": {
            name: f"#/components/schemas/{component_name(name)}" for name in PAPER_EVENT_TYPES
        }},
    }
    return result
