"""The AsyncAPI 3 document of /ws/papers, built from realtime.schemas: the schemas the tests check every emitter
against, so protocol, document and code cannot drift.

`python -m realtime.asyncapi` rewrites docs/asyncapi.yaml (a test fails while the committed file differs);
GET /api/asyncapi.json serves the same document."""

import copy
import sys
from pathlib import Path
from typing import Any

from .events import PAPER_EVENT_TYPES, SYSTEM_STATUS
from .openapi import component_name
from .schemas import CLIENT_SCHEMAS, SERVER_SCHEMAS, WIRE_SCHEMAS

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
CHANNEL = "#/channels/papers/messages/"

# What each client message asks, and the messages that may answer it (an error answers any of them).
CLIENT_MESSAGES = {
    "authenticate": ("Authenticate with a SimpleJWT access token (POST /api/token/); again to renew it.",
                     ["authenticated"]),
    "subscribe": ("Subscribe to a paper (with its snapshot, and with since: the events missed), or to a topic.",
                  ["subscribed"]),
    "unsubscribe": ("End a subscription.", ["unsubscribed"]),
    "ping": ("An application-level ping, for clients that cannot see WebSocket pings.", ["pong"]),
}
SERVER_MESSAGES = {
    "authenticated": "The connection now acts for this user.",
    "subscribed": "The subscription holds; a paper's carries its snapshot and, with since, a recovery report.",
    "unsubscribed": "A subscription ended: asked for, or (with reason) because the paper was deleted or is no "
                    "longer visible to the user.",
    "paper_deleted": "A paper the user could see was deleted (to topic papers subscribers): drop it from a list.",
    "pong": "The answer to ping.",
    "error": "A message was refused (the connection stays open), or the last message before a close (4001-4013).",
    "reauthenticate": "The access token expires soon: send authenticate with a fresh one before close_at.",
}
EVENT_SUMMARIES = {
    "status_changed": "A paper's status changed.",
    "progress_updated": "A paper's processing advanced.",
    "entity_extracted": "An entity was extracted from a paper.",
    "relationship_extracted": "A relationship between two extracted entities was found.",
    "error": "A paper's processing failed (sent just before its status_changed to failed).",
    "system_status": "System-wide figures, every SYSTEM_STATUS_INTERVAL seconds, to topic system.",
}
DESCRIPTION = (
    "The live event stream of the paper pipeline. Every frame is a UTF-8 JSON object in a text frame. Client "
    "messages and the server's replies carry `type` (a reply echoes the request's `id`); data events carry "
    "`event_type`. A browser signed in with a Django session is authenticated on connect; anyone else sends "
    "`authenticate` first. Close codes, limits and delivery guarantees: docs/protocol.md."
)


def _message_name(name: str) -> str:
    """A client or server message's component name: subscribe → SubscribeMessage."""
    return "".join(part.title() for part in name.split("_")) + "Message"


def _message(name: str, schema_name: str, summary: str) -> dict[str, Any]:
    """A message object whose payload is a component schema."""
    return {"name": name, "title": name, "summary": summary, "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{schema_name}"}}


def _event_key(event_type: str) -> str:
    """Channel message key of an event: error events and the error reply share a name but not a key."""
    return f"{event_type}_event"


def build() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of /ws/papers."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name in CLIENT_MESSAGES:
        schemas[_message_name(name)] = copy.deepcopy(CLIENT_SCHEMAS[name])
        messages[name] = _message(name, _message_name(name), CLIENT_MESSAGES[name][0])
    for name, summary in SERVER_MESSAGES.items():
        schemas[_message_name(name)] = copy.deepcopy(SERVER_SCHEMAS[name])
        messages[name] = _message(name, _message_name(name), summary)
    for event_type, summary in EVENT_SUMMARIES.items():
        schemas[component_name(event_type)] = copy.deepcopy(WIRE_SCHEMAS[event_type])
        messages[_event_key(event_type)] = _message(event_type, component_name(event_type), summary)
    operations = {
        name: {
            "action": "receive",
            "channel": {"$ref": "#/channels/papers"},
            "summary": summary,
            "messages": [{"$ref": CHANNEL + name}],
            "reply": {"channel": {"$ref": "#/channels/papers"},
                      "messages": [{"$ref": CHANNEL + reply} for reply in [*replies, "error"]]},
        }
        for name, (summary, replies) in CLIENT_MESSAGES.items()
    }
    operations["paperEvents"] = {
        "action": "send", "channel": {"$ref": "#/channels/papers"},
        "summary": "Events of the papers the connection subscribed to (a paper, or topic papers), in seq order.",
        "messages": [{"$ref": CHANNEL + _event_key(event_type)} for event_type in PAPER_EVENT_TYPES],
    }
    operations["systemEvents"] = {
        "action": "send", "channel": {"$ref": "#/channels/papers"},
        "summary": "system_status events to connections subscribed to topic system.",
        "messages": [{"$ref": CHANNEL + _event_key(SYSTEM_STATUS)}],
    }
    operations["notices"] = {
        "action": "send", "channel": {"$ref": "#/channels/papers"},
        "summary": "Messages the server sends unasked: token renewal, subscriptions it ended, deleted papers, "
                   "closing errors.",
        "messages": [{"$ref": CHANNEL + name} for name in ("reauthenticate", "unsubscribed", "paper_deleted", "error")],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Paper Pipeline realtime protocol", "version": "1.0.0", "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:8000", "protocol": "ws", "description": "`make run` on this machine."},
            "deployed": {"host": "{host}", "protocol": "wss", "description": "Behind a TLS proxy.",
                         "variables": {"host": {"default": "papers.example.com"}}},
        },
        "channels": {"papers": {"address": "/ws/papers", "title": "/ws/papers", "messages": messages}},
        "operations": operations,
        "components": {"schemas": schemas},
    }


def render() -> str:
    """The document as docs/asyncapi.yaml holds it."""
    import yaml  # PyYAML comes with drf-spectacular; only writing the file needs it

    class Dumper(yaml.SafeDumper):
        """Writes a schema shared by several fields out at each, never as a YAML alias."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    header = "# Generated from realtime/schemas.py by `python -m realtime.asyncapi`; do not edit by hand.\n"
    return header + yaml.dump(build(), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=120)


if __name__ == "__main__":
    DOCUMENT.write_text(render())
    sys.stdout.write(f"wrote {DOCUMENT}\n")
