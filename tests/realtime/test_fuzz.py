"""Property-based fuzz of everything a client can send: no server error escapes, other connections unaffected."""

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime.broadcast import broadcast_event
from realtime.events import SystemStatusEvent
from realtime.protocol import CLOSE_AUTHENTICATION_FAILED, CLOSE_RATE_LIMITED
from tests.conftest import communicator, token_for

pytestmark = pytest.mark.django_db(transaction=True)

REPLY_TYPES = {"authenticated", "subscribed", "unsubscribed", "pong", "error", "reauthenticate"}
CLOSE_CODES = {CLOSE_AUTHENTICATION_FAILED, CLOSE_RATE_LIMITED}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
message_fields = st.fixed_dictionaries(
    {"type": st.sampled_from(["authenticate", "subscribe", "unsubscribe", "ping"]) | json_values},
    optional={
        "id": json_values,
        "token": json_values,
        "paper_id": st.uuids().map(str) | json_values,
        "topic": st.sampled_from(["papers", "system"]) | json_values,
        "event_types": st.lists(st.sampled_from(["status_changed", "error", "x"]), max_size=3) | json_values,
        "since": st.integers(min_value=-5, max_value=10**20) | json_values,
    },
)


def huge_ping(size: int) -> tuple[str, str]:
    """A valid message padded far past any sane size."""
    return "text", json.dumps({"type": "ping", "padding": "x" * size})


frames = st.one_of(
    message_fields.map(lambda m: ("text", json.dumps(m))),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(max_size=200).map(lambda b: ("bytes", b)),
    st.integers(min_value=10_000, max_value=300_000).map(huge_ping),
)


async def authenticated(token: str):
    ws = communicator()
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to({"type": "authenticate", "token": token})
    assert (await ws.receive_json_from(timeout=5))["type"] == "authenticated"
    return ws


async def scenario(token: str, sent: list[tuple[str, object]]) -> None:
    """A bystander and a fuzzing client; every fuzz frame gets a known reply or a documented close."""
    bystander = await authenticated(token)
    await bystander.send_json_to({"type": "subscribe", "topic": "system"})
    assert (await bystander.receive_json_from(timeout=5))["type"] == "subscribed"
    fuzzer = await authenticated(token)
    closed = False
    for kind, frame in sent:
        await fuzzer.send_input({"type": "websocket.receive", kind: frame})  # empty frames included
        # Drain replies until the server is idle for this frame: a ping with a unique id marks the end.
        await fuzzer.send_json_to({"type": "ping", "id": "probe"})
        while True:
            output = await fuzzer.receive_output(timeout=5)  # an escaped server error fails here
            if output["type"] == "websocket.close":
                assert output["code"] in CLOSE_CODES, output
                closed = True
                break
            reply = json.loads(output["text"])
            assert reply["type"] in REPLY_TYPES, reply
            if reply.get("id") == "probe" and reply["type"] == "pong":
                break
        if closed:
            break
    if not closed:
        await fuzzer.disconnect()
    await broadcast_event(SystemStatusEvent(queue_size=1, active_workers=1, processing_rate=0, system_load=0))
    assert (await bystander.receive_json_from(timeout=5))["event_type"] == "system_status"
    await bystander.disconnect()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(frames, min_size=1, max_size=4))
def test_any_client_input_gets_a_documented_answer(user, sent):
    asyncio.run(scenario(token_for(user), sent))
