"""On a real Daphne: a flood of unauthenticated sockets is capped per address and in all, and a password change
or a logout closes the sockets it revokes."""

import asyncio
import contextlib
import json
import os
import re
import struct

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from paperpipeline.launcher import process_commands
from paperpipeline.redis_server import free_port
from tests.e2e import rawws
from tests.e2e.conftest import ARTIFACTS, LiveSystem, _database_url, _wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PER_ADDRESS, TOTAL = 20, 50


@pytest.fixture
def capped_daphne(django_db_setup):
    """One Daphne alone (no workers needed) with small caps on sockets waiting to authenticate."""
    from django.db import connection

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": _database_url(connection.settings_dict),
        "WS_MAX_UNAUTHENTICATED_PER_ADDRESS": str(PER_ADDRESS),
        "WS_MAX_UNAUTHENTICATED": str(TOTAL),
        "WS_AUTH_TIMEOUT": "120",  # the held sockets must outlive the flood, however slow the machine
        "PYTHONUNBUFFERED": "1",
    }
    system = LiveSystem(base_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}/ws/papers")
    system.start("capped-daphne", process_commands(port=str(port), concurrency="1")["daphne"], env)
    try:
        _wait_http(system, system.base_url)
        yield system, port
    finally:
        system.stop()


def answer(sock) -> tuple[str, int | None]:
    """Ping; a held socket answers pong, a refused one already got its error and then its close code."""
    rawws.send_json(sock, {"type": "ping"})
    reply = rawws.read_json(sock)
    if reply["type"] == "pong":
        return "pong", None
    opcode, payload = rawws.read_frame(sock)
    assert opcode == 0x8, (opcode, payload)
    return reply["code"], struct.unpack("!H", payload[:2])[0]


def test_a_flood_of_unauthenticated_sockets_is_capped_per_address_and_in_all(capped_daphne):
    system, port = capped_daphne
    flood = [rawws.handshake(port) for _ in range(300)]  # one address, as fast as it can connect
    outcomes = [answer(sock) for sock in flood]
    assert outcomes.count(("pong", None)) == PER_ADDRESS, "held: exactly the per-address cap"
    assert outcomes.count(("too_many_unauthenticated", 4008)) == 300 - PER_ADDRESS
    second = [rawws.handshake(port, source="127.0.0.2") for _ in range(PER_ADDRESS)]
    assert [answer(sock) for sock in second] == [("pong", None)] * PER_ADDRESS, "another address has its own"
    third = [rawws.handshake(port, source="127.0.0.3") for _ in range(PER_ADDRESS)]
    held = TOTAL - 2 * PER_ADDRESS
    assert [answer(sock) for sock in third] == [("pong", None)] * held + [("server_busy", 4013)] * (PER_ADDRESS - held)
    for sock in flood + second + third:
        sock.close()


# --- revocation on the live system ---


async def access_pair(system, username: str, password: str) -> dict:
    response = await asyncio.to_thread(
        requests.post, f"{system.base_url}/api/token/", json={"username": username, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


async def next_message(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def expect_closed(ws, code: int) -> dict:
    """The error the server sent before closing, after checking the close code."""
    error = await next_message(ws)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == code
    return error


def _change_password(username: str) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)
    user.set_password("a-new-pw-456")
    user.save()


async def test_a_password_change_closes_the_users_sockets_and_voids_their_tokens(live_system, user, other_user):
    pair = await access_pair(live_system, "alice", "pw-alice-123")
    bob_pair = await access_pair(live_system, "bob", "pw-bob-123")
    async with connect(live_system.ws_url) as alice, connect(live_system.ws_url) as bob:
        for ws, access in ((alice, pair["access"]), (bob, bob_pair["access"])):
            await ws.send(json.dumps({"type": "authenticate", "token": access}))
            assert (await next_message(ws))["type"] == "authenticated"
        await asyncio.to_thread(_change_password, "alice")
        error = await expect_closed(alice, 4004)
        assert error["code"] == "access_revoked"
        assert error["message"] == "The account's password was changed; log in again."
        await bob.send(json.dumps({"type": "ping"}))
        assert (await next_message(bob))["type"] == "pong"
    refreshed = await asyncio.to_thread(
        requests.post, f"{live_system.base_url}/api/token/refresh/", json={"refresh": pair["refresh"]}, timeout=10
    )
    assert refreshed.status_code == 401, refreshed.text
    async with connect(live_system.ws_url) as again:
        await again.send(json.dumps({"type": "authenticate", "token": pair["access"]}))
        assert (await expect_closed(again, 4001))["code"] == "authentication_failed"


def _browser_login(system) -> requests.Session:
    """Log in through the real login page, as a browser does: the form's CSRF token, then the POST."""
    browser = requests.Session()
    page = browser.get(f"{system.base_url}/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"username": "alice", "password": "pw-alice-123", "csrfmiddlewaretoken": csrf}
    response = browser.post(f"{system.base_url}/login/", data=form, timeout=10, allow_redirects=False)
    assert response.status_code == 302, response.text
    return browser


def _browser_logout(system, browser: requests.Session) -> None:
    csrf = browser.cookies["csrftoken"]
    response = browser.post(f"{system.base_url}/logout/", headers={"X-CSRFToken": csrf, "Referer": system.base_url},
                            timeout=10, allow_redirects=False)
    assert response.status_code == 302, response.text


async def test_logout_closes_the_sockets_its_session_opened(live_system, user):
    browser = await asyncio.to_thread(_browser_login, live_system)
    other_browser = await asyncio.to_thread(_browser_login, live_system)
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for session in (browser, other_browser):
            cookie = f"sessionid={session.cookies['sessionid']}"
            ws = await stack.enter_async_context(
                connect(live_system.ws_url, origin=live_system.base_url, additional_headers={"Cookie": cookie})
            )
            await ws.send(json.dumps({"type": "subscribe", "topic": "system", "id": 1}))  # the session authenticated it
            assert (await next_message(ws))["type"] == "subscribed"
            sockets.append(ws)
        await asyncio.to_thread(_browser_logout, live_system, browser)
        await expect_only_the_first_closed(*sockets)


async def expect_only_the_first_closed(logged_out, still_in) -> None:
    while (error := await next_message(logged_out)).get("type") != "error":
        pass  # system_status events may come first
    assert (error["code"], error["message"]) == ("access_revoked", "The session was logged out; log in again.")
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(logged_out.recv(), 10)
    assert closed.value.rcvd.code == 4004
    await still_in.send(json.dumps({"type": "ping", "id": "p"}))
    while (reply := await next_message(still_in)).get("id") != "p":
        pass
    assert reply["type"] == "pong"
