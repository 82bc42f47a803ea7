"""Unit tests: every event type's wire form matches the specification's schema."""

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest

from realtime import events
from tests.schemas import SPEC_SCHEMAS, WIRE_SCHEMAS

PAPER = "123e4567-e89b-12d3-a456-426614174000"
WHEN = datetime(2025, 3, 1, 10, 35, tzinfo=UTC)

# The specification's own JSON examples, verbatim.
SPEC_EXAMPLES = {
    "status_changed": {"event_type": "status_changed", "paper_id": PAPER, "timestamp": "2025-03-01T10:35:00Z",
                       "old_status": "uploaded", "new_status": "processing", "message": "Processing started"},
    "progress_updated": {"event_type": "progress_updated", "paper_id": PAPER, "timestamp": "2025-03-01T10:36:00Z",
                         "progress": 0.35, "step": "entity_extraction", "step_progress": 0.6,
                         "estimated_completion": "2025-03-01T10:45:00Z"},
    "entity_extracted": {"event_type": "entity_extracted", "paper_id": PAPER, "timestamp": "2025-03-01T10:36:30Z",
                         "entity_id": "ent-123", "entity_type": "MODEL", "entity_name": "Transformer",
                         "confidence": 0.95},
    "relationship_extracted": {"event_type": "relationship_extracted", "paper_id": PAPER,
                               "timestamp": "2025-03-01T10:37:00Z", "relationship_id": "rel-123",
                               "relationship_type": "TRAINED_ON", "source_id": "ent-123", "target_id": "ent-456",
                               "confidence": 0.85},
    "error": {"event_type": "error", "paper_id": PAPER, "timestamp": "2025-03-01T10:38:00Z",
              "error_code": "processing_failed", "error_message": "Failed to extract entities",
              "details": {"step": "entity_extraction", "task_id": "4f8ed542-a2ea-4a47-92b3-5fe0ae7740f2"}},
    "system_status": {"event_type": "system_status", "timestamp": "2025-03-01T10:40:00Z", "queue_size": 5,
                      "active_workers": 3, "processing_rate": 2.5, "system_load": 0.7},
}

BUILT = {
    "status_changed": events.StatusEvent(paper_id=uuid.UUID(PAPER), timestamp=WHEN, old_status="uploaded",
                                         new_status="processing", message="Processing started"),
    "progress_updated": events.ProgressEvent(paper_id=PAPER, timestamp=WHEN, progress=0.35, step="entity_extraction",
                                             step_progress=0.6, estimated_completion=WHEN + timedelta(minutes=10)),
    "entity_extracted": events.EntityEvent(paper_id=PAPER, timestamp=WHEN, entity_id="ent-123", entity_type="MODEL",
                                           entity_name="Transformer", confidence=0.95),
    "relationship_extracted": events.RelationshipEvent(paper_id=PAPER, timestamp=WHEN, relationship_id="rel-123",
                                                       relationship_type="TRAINED_ON", source_id="ent-123",
                                                       target_id="ent-456", confidence=0.85),
    "error": events.ErrorEvent(paper_id=PAPER, timestamp=WHEN, error_code="processing_failed",
                               error_message="Failed to extract entities",
                               details={"step": "entity_extraction", "task_id": "4f8ed542"}),
    "system_status": events.SystemStatusEvent(timestamp=WHEN, queue_size=5, active_workers=3, processing_rate=2.5,
                                              system_load=0.7),
}


def test_every_event_type_has_a_schema_and_a_dataclass():
    assert set(SPEC_SCHEMAS) == set(events.EVENT_TYPES) == set(BUILT) == set(SPEC_EXAMPLES)


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_spec_example_satisfies_schema(event_type):
    jsonschema.validate(SPEC_EXAMPLES[event_type], SPEC_SCHEMAS[event_type])


@pytest.mark.parametrize("event_type", events.EVENT_TYPES)
def test_dataclass_wire_form_matches_spec(event_type):
    wire = BUILT[event_type].to_dict()
    jsonschema.validate(wire, SPEC_SCHEMAS[event_type])
    assert set(wire) == set(SPEC_EXAMPLES[event_type]), "field names must be exactly the specification's"
    assert list(wire)[0] == "event_type"


def test_timestamps_are_rfc3339_utc_with_z():
    assert events.format_timestamp(WHEN) == "2025-03-01T10:35:00.000Z"
    other_zone = WHEN.astimezone(timezone(timedelta(hours=5)))
    assert events.format_timestamp(other_zone) == "2025-03-01T10:35:00.000Z"
    with pytest.raises(ValueError):
        events.format_timestamp(datetime(2025, 3, 1))


def test_schema_rejects_renamed_or_mistyped_fields():
    wire = BUILT["entity_extracted"].to_dict()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**wire, "confidence": 1.5}, SPEC_SCHEMAS["entity_extracted"])
    renamed = {("name" if k == "entity_name" else k): v for k, v in wire.items()}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(renamed, SPEC_SCHEMAS["entity_extracted"])


def test_encode_is_compact_json():
    text = events.encode(BUILT["system_status"].to_dict())
    assert " " not in text
    assert json.loads(text)["queue_size"] == 5


def test_a_logged_event_carries_seq_and_event_id_last():
    event_id = uuid.uuid4()
    logged = dataclasses.replace(BUILT["entity_extracted"], seq=7, event_id=event_id)
    wire = logged.to_dict()
    jsonschema.validate(wire, WIRE_SCHEMAS["entity_extracted"])
    assert list(wire) == [*SPEC_EXAMPLES["entity_extracted"], "seq", "event_id"]
    assert (wire["seq"], wire["event_id"]) == (7, str(event_id))


def test_an_unlogged_event_has_neither_key():
    assert not {"seq", "event_id"} & set(BUILT["error"].to_dict())
