"""permessage-deflate on the real Daphne: negotiated when offered, shared compressed frames, and a switch."""

import asyncio
import json
import os

import pytest
from websockets.asyncio.client import connect

from tests.conftest import make_pdf
from tests.e2e.conftest import running_system
from tests.e2e.test_pipeline_live import events_until_final, request, token, upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def extensions(ws) -> str:
    return ws.response.headers.get("Sec-WebSocket-Extensions", "")


async def subscribed(system, access: str, compression: str | None):
    ws = await connect(system.ws_url, compression=compression)
    assert (await request(ws, {"type": "authenticate", "token": access, "id": "a"}))["type"] == "authenticated"
    assert (await request(ws, {"type": "subscribe", "topic": "papers", "id": "s"}))["type"] == "subscribed"
    return ws


@pytest.fixture
def carol(django_user_model):
    django_user_model.objects.create_user(username="carol", password="pw-carol-123")


async def test_compressed_and_plain_clients_receive_the_same_events(live_system, carol):
    access = await token(live_system, "carol", "pw-carol-123")
    deflated = await subscribed(live_system, access, "deflate")
    plain = await subscribed(live_system, access, None)
    assert "permessage-deflate" in extensions(deflated)
    assert "server_no_context_takeover" in extensions(deflated), "one compressed frame serves every socket"
    assert extensions(plain) == ""

    paper = await upload(live_system, access, "deflate.pdf", make_pdf("We propose DeflateNet, trained on ImageNet."))
    got_deflated, got_plain = await asyncio.gather(
        events_until_final(deflated, paper["id"]), events_until_final(plain, paper["id"])
    )
    assert [e["seq"] for e in got_deflated] == list(range(1, len(got_deflated) + 1)), "every event, in order"
    assert got_deflated == got_plain
    assert got_deflated[-1]["new_status"] == "completed"
    await deflated.close()
    await plain.close()


async def test_compression_can_be_turned_off(django_db_setup):
    with running_system(redis_url=os.environ["REDIS_URL"], name="nodeflate-", WS_COMPRESSION="false") as system:
        async with connect(system.ws_url, compression="deflate") as ws:
            assert extensions(ws) == "", "the offer is declined"
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
