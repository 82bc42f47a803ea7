"""Every reply and notice the consumer sends, through the full ASGI stack, satisfies its schema in realtime.schemas
(the AsyncAPI document's): a field the schema lacks fails here."""

import pytest
from asgiref.sync import sync_to_async

from papers.models import Paper, PaperStatus
from tests.conftest import communicator
from tests.realtime.test_consumer import TIMEOUT, connected, make_paper, send, set_status
from tests.realtime.test_lifecycle import short_token
from tests.schemas import assert_server_message, assert_wire_event

pytestmark = pytest.mark.django_db(transaction=True)


async def checked(ws, message) -> dict:
    """Send a message; return its reply once it satisfies the server's schemas."""
    reply = await send(ws, message)
    assert_server_message(reply)
    return reply


async def test_replies_to_every_client_message_satisfy_their_schemas(user, other_user):
    paper = await make_paper(user)
    await set_status(paper.pk, PaperStatus.QUEUED)
    hidden = await make_paper(other_user)
    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    assert (await checked(ws, {"type": "subscribe", "topic": "papers"}))["code"] == "not_authenticated"
    authenticated = await checked(ws, {"type": "authenticate", "token": short_token(user, 600), "id": "a"})
    assert authenticated["type"] == "authenticated" and "expires_at" in authenticated

    paper_reply = await checked(ws, {"type": "subscribe", "paper_id": str(paper.pk), "event_types": ["error"],
                                     "id": 1})
    assert paper_reply["type"] == "subscribed" and paper_reply["snapshot"]["seq"] == 1
    resumed = await checked(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 0})
    assert resumed["recovery"] == {"since": 0, "complete": True, "replayed": 1}
    assert_wire_event(await ws.receive_json_from(timeout=TIMEOUT))  # the replayed event
    gap = await checked(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 5})
    assert gap["recovery"]["reason"] == "unknown_seq"
    assert (await checked(ws, {"type": "subscribe", "topic": "papers", "id": 2}))["type"] == "subscribed"
    assert (await checked(ws, {"type": "subscribe", "topic": "system"}))["type"] == "subscribed"
    assert (await checked(ws, {"type": "unsubscribe", "topic": "system", "id": "u"}))["type"] == "unsubscribed"
    assert (await checked(ws, {"type": "unsubscribe", "paper_id": str(paper.pk)}))["type"] == "unsubscribed"
    assert (await checked(ws, {"type": "ping", "id": 7}))["type"] == "pong"

    refusals = [
        ({"type": "subscribe", "paper_id": str(hidden.pk)}, "not_found"),
        ({"type": "unsubscribe", "topic": "system"}, "not_subscribed"),
        ({"type": "subscribe", "topic": "system", "event_types": ["error"]}, "invalid_message"),
        ({"type": "shout"}, "unknown_type"),
    ]
    for message, code in refusals:
        assert (await checked(ws, message))["code"] == code
    await ws.send_to(text_data="{not json")
    invalid = await ws.receive_json_from(timeout=TIMEOUT)
    assert_server_message(invalid)
    assert invalid["code"] == "invalid_json"
    await ws.disconnect()


async def test_notices_the_server_sends_unasked_satisfy_their_schemas(user, settings):
    settings.WS_REAUTH_NOTICE, settings.WS_AUTH_GRACE = 2.5, 0.5
    paper = await make_paper(user)
    ws = await connected(user)
    await send(ws, {"type": "subscribe", "paper_id": str(paper.pk)})
    await sync_to_async(Paper.objects.filter(pk=paper.pk).delete)()
    notice = await ws.receive_json_from(timeout=TIMEOUT)
    assert notice["reason"] == "deleted"
    assert_server_message(notice)
    await ws.disconnect()

    ws = communicator()
    await ws.connect(timeout=TIMEOUT)
    await checked(ws, {"type": "authenticate", "token": short_token(user, 3)})
    renew = await ws.receive_json_from(timeout=TIMEOUT)
    assert renew["type"] == "reauthenticate"
    assert_server_message(renew)
    await ws.disconnect()
