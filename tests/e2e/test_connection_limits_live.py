"""Heartbeat and the inbound size limit, enforced by the real Daphne server (realtime.server)."""

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e import rawws

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_peer_that_never_answers_pings_is_dropped(live_system):
    port = int(live_system.base_url.rsplit(":", 1)[1])
    sock = rawws.handshake(port)
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(4096):  # read (so the kernel buffer never blocks the server), never pong
            received += chunk
    except ConnectionResetError:
        pass  # dropped without a closing handshake: the peer is dead, after all
    assert received[:1] == b"\x89", "the server pinged first"
    assert time.monotonic() - started < 15, "dropped within interval + timeout (+ Daphne's 2 s check period)"
    sock.close()


async def test_a_peer_that_answers_pings_stays_connected(live_system):
    async with connect(live_system.ws_url) as ws:  # the websockets client answers protocol pings
        await asyncio.sleep(5)  # longer than ping interval + timeout (1 s + 2 s)
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"


async def test_an_oversized_message_closes_with_1009(live_system):
    async with connect(live_system.ws_url, max_size=None) as ws:
        await ws.send("x" * 70_000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 1009
