"""Who may hold a socket: the same-origin check."""

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured

from realtime.routing import websocket_urlpatterns
from realtime.security import BrowserOriginValidator
from tests.conftest import communicator
from tests.realtime.test_consumer import TIMEOUT

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
