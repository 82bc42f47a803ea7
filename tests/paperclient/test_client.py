"""Unit tests of the client's connection logic against a scripted in-process WebSocket server (a fake: the real
server is in tests/e2e/test_python_client_live.py)."""

import asyncio
import json
import random

import pytest
from websockets.asyncio.server import serve

from paperclient import (
    AuthenticationError,
    Backoff,
    Disconnected,
    PaperClient,
    PaperClientError,
    PaperEvent,
    Subscribed,
)
from paperclient import tokens as tokens_module
from tests.paperclient.test_events import wire
from tests.paperclient.test_tracking import jwt

PAPER = "123e4567-e89b-12d3-a456-426614174000"
SNAPSHOT = {"paper_id": PAPER, "title": "T", "status": "processing", "progress": 0.5, "step": "entity_extraction",
            "step_progress": 0.1, "estimated_completion": None, "error_code": "", "error_message": "", "seq": 0}


def event(seq: int) -> str:
    return json.dumps({**wire("progress_updated"), "paper_id": PAPER, "seq": seq})


class Script:
    """A server whose handler for the n-th connection is handlers[n]; records what each connection received."""

    def __init__(self, *handlers) -> None:
        self.handlers = list(handlers)
        self.received: list[list[dict]] = []

    async def __call__(self, ws) -> None:
        index = len(self.received)
        self.received.append([])
        await self.handlers[min(index, len(self.handlers) - 1)](ws, self.received[index])


async def reply(ws, log: list, **answer) -> dict:
    """Read the next client message and answer it (echoing its id)."""
    message = json.loads(await ws.recv())
    log.append(message)
    await ws.send(json.dumps({**answer, "id": message["id"]}))
    return message


async def authenticated(ws, log) -> None:
    await reply(ws, log, type="authenticated", user={"id": 1, "username": "alice"}, expires_at="2099-01-01T00:00:00Z")


@pytest.fixture
async def server():
    scripts = {}

    async def start(script: Script) -> str:
        scripts["server"] = await serve(script, "127.0.0.1", 0).__aenter__()
        port = scripts["server"].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    if "server" in scripts:
        scripts["server"].close()
        await scripts["server"].wait_closed()


def fast() -> Backoff:
    return Backoff(initial=0.05, maximum=0.1, floor=0.01, rng=random.Random(0))


async def test_a_dropped_connection_resumes_with_since_and_drops_what_it_already_has(server):
    async def first(ws, log):
        await authenticated(ws, log)
        await reply(ws, log, type="subscribed", paper_id=PAPER, event_types=None, snapshot=SNAPSHOT,
                    recovery={"since": 0, "complete": True, "replayed": 3})
        for seq in (1, 2, 3):
            await ws.send(event(seq))
        await ws.close(1011)

    async def second(ws, log):
        await authenticated(ws, log)
        await reply(ws, log, type="subscribed", paper_id=PAPER, event_types=None, snapshot={**SNAPSHOT, "seq": 4},
                    recovery={"since": 3, "complete": True, "replayed": 1})
        for seq in (3, 4, 5):  # 3 again: the client must not yield it twice
            await ws.send(event(seq))
        await ws.wait_closed()

    script = Script(first, second)
    url = await server(script)
    seen, notices = [], []
    async with PaperClient(url, access=jwt({"exp": 4_000_000_000}), backoff=fast()) as client:
        await client.subscribe_paper(PAPER, since=0)
        async with asyncio.timeout(10):
            async for message in client:
                (seen if isinstance(message, PaperEvent) else notices).append(message)
                if seen and seen[-1].seq == 5:
                    break
    assert [e.seq for e in seen] == [1, 2, 3, 4, 5]
    assert script.received[1][1] == {"type": "subscribe", "paper_id": PAPER, "since": 3, "id": "c4"}
    drop = next(n for n in notices if isinstance(n, Disconnected))
    assert drop.code == 1011 and 0.01 <= drop.retry_in <= 0.05
    assert sum(isinstance(n, Subscribed) for n in notices) == 2


async def test_access_revoked_ends_the_client(server):
    async def revoke(ws, log):
        await authenticated(ws, log)
        await ws.send(json.dumps({"type": "error", "code": "access_revoked", "message": "Deactivated."}))
        await ws.close(4004)

    url = await server(Script(revoke))
    async with PaperClient(url, access=jwt({"exp": 4_000_000_000}), backoff=fast()) as client:
        with pytest.raises(PaperClientError, match="4004.*access_revoked"):
            async with asyncio.timeout(10):
                async for _ in client:
                    pass


async def test_a_refused_token_is_renewed_once_then_the_client_gives_up(server, monkeypatch):
    logins = []

    def post(url, body, timeout):
        logins.append(url)
        return 200, {"access": jwt({"exp": 4_000_000_000}), "refresh": f"r{len(logins)}"}

    async def refuse(ws, log):
        await reply(ws, log, type="error", code="authentication_failed", message="Token is invalid.")
        await ws.close(4001)

    monkeypatch.setattr(tokens_module, "_post_json", post)
    url = await server(Script(refuse))
    client = PaperClient(url, username="alice", password="pw", backoff=fast())
    with pytest.raises(AuthenticationError):
        async with asyncio.timeout(10):
            await client.connect()
    await client.close()
    assert logins == [f"{url}/api/token/", f"{url}/api/token/refresh/"], "logged in, renewed once after the refusal"


async def test_the_servers_notice_renews_the_token_on_the_same_connection(server, monkeypatch):
    monkeypatch.setattr(tokens_module, "_post_json", lambda url, body, timeout: (
        200, {"access": jwt({"exp": 4_000_000_001}), "refresh": "r2"}))
    renewed = asyncio.Event()

    async def notice(ws, log):
        await authenticated(ws, log)
        await ws.send(json.dumps({"type": "reauthenticate", "reason": "token_expiring",
                                  "close_at": "2099-01-01T00:00:30Z"}))
        await authenticated(ws, log)
        renewed.set()
        await ws.wait_closed()

    script = Script(notice)
    url = await server(script)
    async with PaperClient(url, access=jwt({"exp": 4_000_000_000}), refresh="r1", backoff=fast()) as client:
        async with asyncio.timeout(10):
            await renewed.wait()
        assert client.tokens.refresh == "r2"
    assert len(script.received) == 1
    assert [m["token"] for m in script.received[0]] == [jwt({"exp": 4_000_000_000}), jwt({"exp": 4_000_000_001})]
