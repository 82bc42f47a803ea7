"""The wire schemas (realtime.schemas, the one source the AsyncAPI document is built from), and the check the
emitters' tests apply with them."""

import jsonschema

from realtime.schemas import (  # noqa: F401 (re-exported for the tests)
    CLIENT_SCHEMAS,
    EVENT_SCHEMAS,
    EXTRA_PROPERTIES,
    SERVER_SCHEMAS,
    SPEC_SCHEMAS,
    WIRE_SCHEMAS,
)


def assert_wire_event(payload: dict) -> None:
    """Fail unless payload is a valid event as the server sends it."""
    assert "event_type" in payload, payload
    jsonschema.validate(payload, WIRE_SCHEMAS[payload["event_type"]])


def assert_server_message(payload: dict) -> None:
    """Fail unless payload is a valid reply or notice of the server (a "type"d message, not an event)."""
    assert payload.get("type") in SERVER_SCHEMAS, payload
    jsonschema.validate(payload, SERVER_SCHEMAS[payload["type"]], format_checker=jsonschema.FormatChecker())
