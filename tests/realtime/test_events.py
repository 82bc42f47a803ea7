"""Unit tests: every event type's wire form matches the specification's schema, plus the documented extra fields."""

import dataclasses
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from realtime import events
from tests.schemas import EVENT_SCHEMAS, EXTRA_PROPERTIES, SPEC_SCHEMAS, WIRE_SCHEMAS

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

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
                                           entity_name="Transformer", confidence=0.95, mentions=12, salience=0.91,
                                           key=True, signals=("title", "proposed")),
    "relationship_extracted": events.RelationshipEvent(paper_id=PAPER, timestamp=WHEN, relationship_id="rel-123",
                                                       relationship_type="EVALUATED_ON", source_id="ent-123",
                                                       target_id="ent-456", confidence=0.85, metric_id="ent-789",
                                                       metric="BLEU", score="28.4"),
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
    jsonschema.validate(wire, EVENT_SCHEMAS[event_type])
    extras = list(EXTRA_PROPERTIES.get(event_type, {}))
    spec_part = {key: value for key, value in wire.items() if key not in extras}
    jsonschema.validate(spec_part, SPEC_SCHEMAS[event_type])
    assert set(spec_part) == set(SPEC_EXAMPLES[event_type]), "the specification's field names, all of them"
    assert list(wire)[0] == "event_type"
    assert list(wire)[len(spec_part):] == extras, "the extra fields come after the specification's, all of them"


def test_extra_fields_are_exactly_those_of_entity_and_relationship_events():
    assert set(EXTRA_PROPERTIES) == {"entity_extracted", "relationship_extracted"}
    assert list(BUILT["entity_extracted"].to_dict())[-4:] == ["mentions", "salience", "key", "signals"]
    assert list(BUILT["relationship_extracted"].to_dict())[-3:] == ["metric_id", "metric", "score"]


@pytest.mark.parametrize("event_type", sorted(EXTRA_PROPERTIES))
def test_every_extra_field_is_documented_in_the_protocol(event_type):
    section = PROTOCOL.read_text().split(f"### {event_type}\n", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^- `(\w+)`", section, flags=re.M))
    assert documented == set(EXTRA_PROPERTIES[event_type])
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, flags=re.S)]
    assert examples, "an example of the event with its extra fields"
    for example in examples:
        jsonschema.validate({**example, "event_id": str(uuid.uuid4())}, WIRE_SCHEMAS[event_type])  # elided there


@pytest.mark.parametrize("event_type", sorted(EXTRA_PROPERTIES))
def test_schema_rejects_a_missing_or_an_unknown_extra_field(event_type):
    wire = BUILT[event_type].to_dict()
    for field_name in EXTRA_PROPERTIES[event_type]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({k: v for k, v in wire.items() if k != field_name}, EVENT_SCHEMAS[event_type])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**wire, "importance": 0.5}, EVENT_SCHEMAS[event_type])


def test_entity_signals_are_a_json_list_and_unknown_signals_fail_the_schema():
    wire = BUILT["entity_extracted"].to_dict()
    assert wire["signals"] == ["title", "proposed"] and isinstance(wire["signals"], list)
    assert json.loads(events.encode(wire)) == wire  # what subscribers get equals what the log stores
    for bad in (["footnote"], ["title", "title"], [*"abcdef"]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**wire, "signals": bad}, EVENT_SCHEMAS["entity_extracted"])


def test_a_relationship_without_a_result_has_null_metric_and_score():
    plain = dataclasses.replace(
        BUILT["relationship_extracted"], relationship_type="TRAINED_ON", metric_id=None, metric=None, score=None
    )
    wire = plain.to_dict()
    assert (wire["metric_id"], wire["metric"], wire["score"]) == (None, None, None)
    jsonschema.validate(wire, EVENT_SCHEMAS["relationship_extracted"])
    with pytest.raises(jsonschema.ValidationError):  # a metric is named exactly when its id is given
        jsonschema.validate({**wire, "metric": "BLEU"}, EVENT_SCHEMAS["relationship_extracted"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**wire, "score": "9" * 33}, EVENT_SCHEMAS["relationship_extracted"])


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
    assert list(wire) == [*SPEC_EXAMPLES["entity_extracted"], *EXTRA_PROPERTIES["entity_extracted"], "seq", "event_id"]
    assert (wire["seq"], wire["event_id"]) == (7, str(event_id))


def test_an_unlogged_event_has_neither_key():
    assert not {"seq", "event_id"} & set(BUILT["error"].to_dict())
