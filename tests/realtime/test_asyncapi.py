"""The AsyncAPI document of /ws/papers: built from realtime.schemas, committed as generated, valid AsyncAPI 3.0, and
in step with the protocol's code and docs/protocol.md."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from rest_framework.test import APIClient

from realtime import asyncapi, protocol
from realtime.events import EVENT_TYPES
from realtime.schemas import CLIENT_SCHEMAS, ERROR_CODES, SERVER_SCHEMAS, STATUSES, WIRE_SCHEMAS
from tests.conftest import token_for

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
ASYNCAPI_SCHEMA = ROOT / "tests" / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"


def test_the_committed_document_is_what_the_generator_writes_now():
    assert asyncapi.DOCUMENT.read_text() == asyncapi.render(), "run `python -m realtime.asyncapi` and commit it"


def test_the_document_is_valid_asyncapi_3():
    document = yaml.safe_load(asyncapi.DOCUMENT.read_text())
    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))
    assert list(validator.iter_errors(document)) == []
    broken = {**document, "operations": {**document["operations"], "ping": {"action": "publish"}}}
    assert not validator.is_valid(broken), "the official schema does check operations"


def test_every_reference_resolves_and_every_message_is_used():
    document = asyncapi.build()
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = document
        for part in ref.split("/"):
            node = node[part]
    messages = document["channels"]["papers"]["messages"]
    used = set(re.findall(r'"#/channels/papers/messages/(\w+)"', json.dumps(document["operations"])))
    assert used == set(messages)


def test_the_document_covers_every_message_type_and_event_of_the_code():
    document = asyncapi.build()
    received = {name for name, op in document["operations"].items() if op["action"] == "receive"}
    assert received == set(protocol.MESSAGE_TYPES) == set(CLIENT_SCHEMAS)
    names = {message["name"] for message in document["channels"]["papers"]["messages"].values()}
    assert names == set(protocol.MESSAGE_TYPES) | set(SERVER_SCHEMAS) | set(EVENT_TYPES)
    schemas = document["components"]["schemas"]
    for event_type in EVENT_TYPES:
        assert WIRE_SCHEMAS[event_type] in schemas.values()


def test_the_served_document_is_the_committed_one(db, user):
    assert APIClient().get("/api/asyncapi.json").status_code == 401
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    assert client.get("/api/asyncapi.json").json() == yaml.safe_load(asyncapi.DOCUMENT.read_text())


def _protocol_examples() -> list[dict]:
    """Every JSON object with "type" in docs/protocol.md: in prose, as a json block, or as a line of one."""
    candidates = re.findall(r"`(\{\"type\".*?\})`", PROTOCOL)
    for block in re.findall(r"```json\n(.*?)```", PROTOCOL, flags=re.S):
        candidates += [block, *(line for line in block.splitlines() if line.startswith('{"type"'))]
    examples = []
    for text in candidates:
        try:
            value = json.loads(text)
        except ValueError:  # elided with ... : not an example of the whole message
            continue
        if isinstance(value, dict) and "type" in value:
            examples.append(value)
    return examples


def test_the_protocol_docs_examples_satisfy_the_schemas():
    examples = [e for e in _protocol_examples() if '"..."' not in json.dumps(e)]  # elided snapshots aside
    seen = set()
    for example in examples:
        schemas = CLIENT_SCHEMAS if example["type"] in protocol.MESSAGE_TYPES else SERVER_SCHEMAS
        jsonschema.validate(example, schemas[example["type"]], format_checker=jsonschema.FormatChecker())
        seen.add(example["type"])
    assert seen == set(CLIENT_SCHEMAS) | set(SERVER_SCHEMAS)


def test_the_error_codes_are_those_of_the_protocol_docs_and_the_code():
    table = PROTOCOL.split("## Errors", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M)) == set(ERROR_CODES)
    raised = set()
    for path in (ROOT / "realtime").glob("*.py"):
        raised |= set(re.findall(r'(?:ProtocolError|error_reply)\(\s*"(\w+)"', path.read_text()))
    assert raised <= set(ERROR_CODES) and len(raised) == len(ERROR_CODES), sorted(set(ERROR_CODES) - raised)


def test_the_statuses_are_the_models():
    from papers.models import PaperStatus

    assert STATUSES == list(PaperStatus.values)


@pytest.mark.parametrize("message", [
    {"type": "subscribe", "topic": "system", "event_types": ["error"]},
    {"type": "subscribe", "topic": "papers", "since": 3},
    {"type": "subscribe", "paper_id": "123e4567-e89b-12d3-a456-426614174000", "topic": "papers"},
    {"type": "subscribe", "paper_id": "123e4567-e89b-12d3-a456-426614174000", "event_types": []},
    {"type": "subscribe", "paper_id": "123e4567-e89b-12d3-a456-426614174000", "since": -1},
    {"type": "authenticate", "token": ""},
    {"type": "ping", "id": True},
    {"type": "unsubscribe"},
])
def test_messages_the_server_refuses_fail_the_schema(message):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, CLIENT_SCHEMAS[message["type"]], format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("reply", [
    {"type": "pong", "timestamp": "2026-11-25T22:01:02.345Z", "id": 5, "server": "a"},
    {"type": "error", "code": "teapot", "message": "No."},
    {"type": "authenticated", "user": {"id": 1, "username": "a", "email": "a@example.com"}},
    {"type": "reauthenticate", "reason": "token_expiring", "close_at": "2026-11-25T22:16:30.000Z", "id": 1},
])
def test_a_reply_with_a_field_the_schema_lacks_fails_it(reply):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(reply, SERVER_SCHEMAS[reply["type"]])
