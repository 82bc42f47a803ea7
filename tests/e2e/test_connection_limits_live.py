"""Heartbeat and the inbound size limit, enforced by the real Daphne server (realtime.server)."""

import asyncio
import base64
import json
import os
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def raw_handshake(port: int) -> socket.socket:
    """Open a WebSocket at the byte level; the caller then never answers a ping."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/papers HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def test_a_peer_that_never_answers_pings_is_dropped(live_system):
    port = int(live_system.base_url.rsplit(":", 1)[1])
    sock = raw_handshake(port)
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
