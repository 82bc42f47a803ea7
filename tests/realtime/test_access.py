"""Who may hold a socket: the same-origin check, caps on unauthenticated connections, and revocation on a password
change and on logout."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from realtime.connection import ClientRegistry
from realtime.protocol import (
    CLOSE_ACCESS_REVOKED,
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_RATE_LIMITED,
    CLOSE_TRY_AGAIN_LATER,
)
from realtime.routing import websocket_urlpatterns
from realtime.security import BrowserOriginValidator
from tests.conftest import communicator, token_for
from tests.realtime.test_consumer import TIMEOUT, connected, send
from tests.realtime.test_lifecycle import expect_error_then_close

pytestmark = pytest.mark.django_db(transaction=True)


# --- origin: scheme, host and port ---


async def handshake_accepted(headers) -> bool:
    ws = communicator(headers=headers)
    accepted, _ = await ws.connect(timeout=TIMEOUT)
    if accepted:
        await ws.disconnect()
    return accepted


@pytest.mark.parametrize(
    "host, origin",
    [
        (b"localhost", b"http://localhost:8001"),  # another port of the same host is another site
        (b"127.0.0.1:8000", b"http://127.0.0.1:9999"),
        (b"127.0.0.1:8000", b"https://127.0.0.1:8000"),  # another scheme
        (b"localhost:8000", b"http://127.0.0.1:8000"),  # another host, although both are allowed hosts
        (b"evil.example:8000", b"http://evil.example:8000"),  # same origin, but not an allowed host (rebinding)
        (b"localhost", b"null"),
        (b"localhost", b"http://localhost:99999"),
    ],
)
async def test_a_browser_page_on_another_origin_is_refused(host, origin):
    assert not await handshake_accepted([(b"host", host), (b"origin", origin)])


@pytest.mark.parametrize(
    "host, origin",
    [
        (b"localhost", b"http://localhost"),
        (b"localhost:80", b"http://localhost"),
        (b"127.0.0.1:8000", b"http://127.0.0.1:8000"),
        (b"[::1]:8000", b"http://[::1]:8000"),
    ],
)
async def test_a_browser_page_on_the_sites_own_origin_is_accepted(host, origin):
    assert await handshake_accepted([(b"host", host), (b"origin", origin)])


async def test_two_origin_headers_are_refused_and_a_script_without_origin_is_accepted():
    assert not await handshake_accepted([(b"origin", b"http://localhost"), (b"origin", b"http://evil.example")])
    assert await handshake_accepted([(b"host", b"localhost"), (b"user-agent", b"script")])


async def test_configured_origins_are_exact_origins():
    validator = BrowserOriginValidator(URLRouter(websocket_urlpatterns), ["https://app.example.com"])

    async def accepted(origin: bytes) -> bool:
        headers = [(b"host", b"api.example.com"), (b"origin", origin)]
        ws = WebsocketCommunicator(validator, "/ws/papers", headers=headers)
        ok, _ = await ws.connect(timeout=TIMEOUT)
        if ok:
            await ws.disconnect()
        return ok

    assert await accepted(b"https://app.example.com")
    assert await accepted(b"https://app.example.com:443")
    assert not await accepted(b"http://app.example.com")
    assert not await accepted(b"https://app.example.com:8443")
    assert not await accepted(b"https://evil.app.example.com")


def test_an_origin_setting_without_a_scheme_is_refused_at_start_up():
    with pytest.raises(ImproperlyConfigured, match="app.example.com"):
        BrowserOriginValidator(None, ["app.example.com"])


async def test_behind_a_tls_proxy_the_https_origin_is_the_sites_own(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = [(b"host", b"localhost"), (b"x-forwarded-proto", b"https")]
    assert await handshake_accepted([*proxied, (b"origin", b"https://localhost")])
    assert not await handshake_accepted([*proxied, (b"origin", b"http://localhost")])


# --- unauthenticated connections: capped per address and in all ---


@pytest.fixture
def clients(monkeypatch) -> ClientRegistry:
    """A registry of this test's connections alone: the process's one also holds those other tests left open
    (a communicator whose application the test's event loop cancelled never ran its disconnect)."""
    registry = ClientRegistry()
    monkeypatch.setattr("realtime.connection.clients", registry)
    return registry


async def opened(address: str):
    ws = communicator(client=(address, 50000))
    assert (await ws.connect(timeout=TIMEOUT))[0]
    return ws


async def test_unauthenticated_connections_per_address_are_capped_and_authenticating_frees_a_place(
    user, settings, clients
):
    settings.WS_MAX_UNAUTHENTICATED_PER_ADDRESS, settings.WS_MAX_UNAUTHENTICATED = 2, 100
    first, second = await opened("203.0.113.5"), await opened("203.0.113.5")
    excess = await opened("203.0.113.5")
    error = await excess.receive_json_from(timeout=TIMEOUT)
    assert error["code"] == "too_many_unauthenticated" and "At most 2" in error["message"], error
    assert await excess.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": CLOSE_RATE_LIMITED}
    other = await opened("203.0.113.6")  # another address has its own allowance
    assert (await send(other, {"type": "ping"}))["type"] == "pong"
    assert (await send(first, {"type": "authenticate", "token": token_for(user)}))["type"] == "authenticated"
    third = await opened("203.0.113.5")  # the authenticated one no longer counts
    assert (await send(third, {"type": "ping"}))["type"] == "pong"
    for ws in (first, second, other, third):
        await ws.disconnect()
    assert clients.count_unauthenticated() == 0


async def test_unauthenticated_connections_in_all_are_capped_with_try_again_later(settings, clients):
    settings.WS_MAX_UNAUTHENTICATED_PER_ADDRESS, settings.WS_MAX_UNAUTHENTICATED = 10, 3
    held = [await opened(f"198.51.100.{i}") for i in range(3)]
    excess = await opened("198.51.100.200")
    await expect_error_then_close(excess, "server_busy", CLOSE_TRY_AGAIN_LATER)
    await held[0].disconnect()  # a place frees up once one goes
    again = await opened("198.51.100.200")
    assert (await send(again, {"type": "ping"}))["type"] == "pong"
    for ws in (*held[1:], again):
        await ws.disconnect()


async def test_a_session_socket_does_not_count_as_unauthenticated(user, settings, clients):
    settings.WS_MAX_UNAUTHENTICATED_PER_ADDRESS = 1
    cookie = await session_cookie(user)
    browsers = [communicator(headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)], client=("192.0.2.1", 1))
                for _ in range(3)]
    for ws in browsers:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert (await send(ws, {"type": "subscribe", "topic": "system"}))["type"] == "subscribed"
    for ws in browsers:
        await ws.disconnect()


# --- revocation: password change and logout ---


def _change_password(user, password: str = "a-new-pw-456") -> None:
    user.set_password(password)
    user.save()


async def session_cookie(user, client: Client | None = None) -> bytes:
    client = client or Client()
    await sync_to_async(client.force_login)(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def browser_socket(user, client: Client | None = None):
    """A socket opened by a browser logged in (with this test client's session, or a new one)."""
    ws = communicator(headers=[(b"origin", b"http://localhost"), (b"cookie", await session_cookie(user, client))])
    assert (await ws.connect(timeout=TIMEOUT))[0]
    return ws


async def expect_revoked(ws, message: str) -> None:
    error = await ws.receive_json_from(timeout=TIMEOUT)
    assert (error["code"], error["message"]) == ("access_revoked", message), error
    assert await ws.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": CLOSE_ACCESS_REVOKED}


async def test_a_password_change_closes_every_socket_of_the_user_and_voids_their_tokens(user, other_user):
    old_token = token_for(user)
    jwt_ws, session_ws, bystander = await connected(user), await browser_socket(user), await connected(other_user)
    await sync_to_async(_change_password)(user)
    for ws in (jwt_ws, session_ws):
        await expect_revoked(ws, "The account's password was changed; log in again.")
    assert (await send(bystander, {"type": "ping"}))["type"] == "pong"
    retry = await connected()
    reply = await send(retry, {"type": "authenticate", "token": old_token})
    assert (reply["code"], reply["message"]) == ("authentication_failed", "The user's password has been changed.")
    closed = await retry.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": CLOSE_AUTHENTICATION_FAILED}
    await bystander.disconnect()


async def test_logout_closes_the_sockets_of_that_session_only(user):
    browser = Client()
    logged_out, still_in = await browser_socket(user, browser), await browser_socket(user)
    jwt_ws = await connected(user)
    await sync_to_async(browser.post)("/logout/")
    await expect_revoked(logged_out, "The session was logged out; log in again.")
    for ws in (still_in, jwt_ws):
        assert (await send(ws, {"type": "ping"}))["type"] == "pong"
        await ws.disconnect()
