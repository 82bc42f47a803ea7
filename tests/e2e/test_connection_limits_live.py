"""Heartbeat and the inbound size limit, enforced by the real Daphne server (realtime.server)."""

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import token_for
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


def test_a_pong_later_than_the_ping_interval_but_within_the_timeout_keeps_the_connection(live_system, user):
    """Interval 1 s, timeout 4 s: a peer answering each ping 2.5 s late is slow, not dead. (Daphne pings every
    interval: the next ping used to orphan the first one's timeout, which then dropped this peer.)"""
    port = int(live_system.base_url.rsplit(":", 1)[1])
    sock = rawws.handshake(port)
    rawws.send_json(sock, {"type": "authenticate", "token": token_for(user)})  # past the 10 s auth deadline
    answered = 0
    started = time.monotonic()
    while time.monotonic() - started < 10:  # several intervals and timeouts
        opcode, payload = rawws.read_frame(sock)  # raises EOFError if the server drops the connection
        if opcode == 0x9:
            time.sleep(2.5)  # the late answer under test, not a wait for an event
            rawws.send_frame(sock, 0xA, payload)
            answered += 1
    rawws.send_json(sock, {"type": "ping", "id": "alive"})
    assert rawws.read_json(sock)["type"] == "pong"
    assert answered >= 2
    sock.close()


async def test_a_peer_that_answers_pings_stays_connected(live_system):
    async with connect(live_system.ws_url) as ws:  # the websockets client answers protocol pings
        await asyncio.sleep(7)  # longer than ping interval + timeout (1 s + 4 s) and a check period
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"


async def test_an_oversized_message_closes_with_1009(live_system):
    async with connect(live_system.ws_url, max_size=None) as ws:
        await ws.send("x" * 70_000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 1009
