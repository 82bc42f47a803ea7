"""Unit tests: the client's typed events read every wire form the server's schemas allow, and tolerate additions."""

import dataclasses
import uuid
from datetime import datetime

import jsonschema
import pytest

from paperclient import EntityExtracted, PaperEvent, ProtocolError, StatusChanged, Subscribed, parse_event
from paperclient.events import EVENT_CLASSES, parse_timestamp
from tests.realtime.test_events import BUILT
from tests.schemas import SERVER_SCHEMAS, WIRE_SCHEMAS

PAPER = "123e4567-e89b-12d3-a456-426614174000"


def wire(event_type: str) -> dict:
    """An event exactly as the server sends it (logged: seq and event_id), checked against its schema."""
    event = BUILT[event_type]
    if event_type != "system_status":
        event = dataclasses.replace(event, seq=7, event_id=uuid.uuid4())
    payload = event.to_dict()
    jsonschema.validate(payload, WIRE_SCHEMAS[event_type])
    return payload


def test_every_event_type_of_the_schemas_has_a_class():
    assert set(EVENT_CLASSES) == set(WIRE_SCHEMAS)


@pytest.mark.parametrize("event_type", sorted(WIRE_SCHEMAS))
def test_each_wire_event_parses_to_its_class_with_every_field(event_type):
    payload = wire(event_type)
    event = parse_event(payload)
    assert type(event) is EVENT_CLASSES[event_type] and event.event_type == event_type
    assert event.extra == {}
    for key, value in payload.items():
        if key == "event_type":
            continue
        parsed = getattr(event, key)
        if isinstance(parsed, datetime):
            assert parsed == parse_timestamp(value) and parsed.utcoffset().total_seconds() == 0
        elif isinstance(parsed, tuple):
            assert list(parsed) == value
        else:
            assert parsed == value, key
    assert isinstance(event, PaperEvent) == (event_type != "system_status")


@pytest.mark.parametrize("event_type", sorted(WIRE_SCHEMAS))
def test_fields_a_newer_server_adds_are_kept_aside_not_refused(event_type):
    event = parse_event({**wire(event_type), "added_later": {"x": 1}})
    assert event.extra == {"added_later": {"x": 1}}


def test_an_unknown_event_type_is_skipped():
    assert parse_event({"event_type": "paper_renamed", "timestamp": "2026-01-01T00:00:00Z"}) is None


@pytest.mark.parametrize(
    "change",
    [{"new_status": None}, {"seq": 0}, {"seq": "3"}, {"timestamp": "2026-01-01T00:00:00+02:00"},
     {"timestamp": "yesterday"}],
)
def test_a_missing_field_a_bad_seq_or_timestamp_is_a_protocol_error(change):
    payload = {**wire("status_changed"), **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(ProtocolError):
        parse_event(payload)


def test_optional_extras_of_an_older_server_default():
    payload = {k: v for k, v in wire("entity_extracted").items() if k not in ("mentions", "salience", "key", "signals")}
    event = parse_event(payload)
    assert isinstance(event, EntityExtracted) and event.signals == () and event.mentions is None


def test_a_final_status_says_so():
    done = parse_event({**wire("status_changed"), "old_status": "processing", "new_status": "cancelled"})
    assert isinstance(done, StatusChanged) and done.final
    assert not parse_event(wire("status_changed")).final


def test_a_subscribed_reply_with_snapshot_and_recovery():
    reply = {
        "type": "subscribed", "paper_id": PAPER, "event_types": None, "id": 6,
        "snapshot": {"paper_id": PAPER, "title": "DeBERTa", "status": "completed", "progress": 1.0, "step": "",
                     "step_progress": 1.0, "estimated_completion": None, "error_code": "", "error_message": "",
                     "seq": 57},
        "recovery": {"since": 0, "complete": False, "replayed": 0, "reason": "pruned", "first_available_seq": 57},
    }
    jsonschema.validate(reply, SERVER_SCHEMAS["subscribed"])
    subscribed = Subscribed.from_wire(reply)
    assert subscribed.snapshot.seq == 57 and subscribed.snapshot.final
    assert (subscribed.recovery.complete, subscribed.recovery.reason) == (False, "pruned")
    topic = Subscribed.from_wire({"type": "subscribed", "topic": "papers", "event_types": ["error"]})
    assert (topic.topic, topic.event_types, topic.snapshot) == ("papers", ("error",), None)
