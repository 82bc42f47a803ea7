"""End to end: the Python client (paperclient) and `manage.py watch_paper` on real Daphne, Celery and Redis."""

import asyncio
import contextlib
import signal
import subprocess
import sys
import time

import pytest
import requests

from paperclient import (
    Authenticated,
    Backoff,
    Disconnected,
    EntityExtracted,
    PaperClient,
    PaperEvent,
    StatusChanged,
    Subscribed,
    SystemStatus,
)
from paperpipeline.redis_server import start_redis_server
from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import ROOT, running_system
from tests.e2e.slow_extractor import GATE_MARKER

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAPER_TIMEOUT = 120
PASSWORD = "pw-alice-123"


@pytest.fixture(scope="module")
def client_system(django_db_setup, django_db_blocker, tmp_path_factory):
    """Its own Redis and processes; one-minute access tokens, and the server asks for a new one 3 s after login."""
    redis, url = start_redis_server(workdir=tmp_path_factory.mktemp("client-redis"))
    gate = tmp_path_factory.mktemp("client-gate") / "open"
    try:
        with running_system(redis_url=url, name="client-", JWT_ACCESS_MINUTES="1", WS_REAUTH_NOTICE="57",
                            E2E_GATE_FILE=str(gate)) as system:
            system.gate = gate
            yield system
    finally:
        gate.touch()
        redis.terminate()
        redis.wait(timeout=10)


@pytest.fixture
def alice(django_user_model):
    django_user_model.objects.create_user(username="alice", password=PASSWORD)
    return "alice"


def upload(system, username: str, name: str, content: bytes) -> dict:
    access = requests.post(f"{system.base_url}/api/token/", json={"username": username, "password": PASSWORD},
                           timeout=10).json()["access"]
    response = requests.post(f"{system.base_url}/api/papers/", files={"file": (name, content)},
                             headers={"Authorization": f"Bearer {access}"}, timeout=30)
    assert response.status_code == 201, response.text
    return {**response.json(), "access": access}


def logged_events(system, paper: dict) -> list[dict]:
    response = requests.get(f"{system.base_url}/api/papers/{paper['id']}/events/",
                            headers={"Authorization": f"Bearer {paper['access']}"}, timeout=10)
    return response.json()["events"]


def paper_status(paper_id: str) -> str:
    """The paper's status in the database (the web process may be down: no API to ask)."""
    from django.db import connection

    from papers.models import Paper

    try:
        return Paper.objects.get(pk=paper_id).status
    finally:
        connection.close()


async def until(predicate, seconds: float) -> None:
    """Wait for a condition of another process that sends no event (a paper finishing while Daphne is down)."""
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.2)


def quick_client(system, **kwargs) -> PaperClient:
    return PaperClient(system.base_url, username="alice", password=PASSWORD,
                       backoff=Backoff(initial=0.2, maximum=1.0), **kwargs)


@pytest.mark.parametrize("follow", ["paper", "topic"])
async def test_events_in_order_and_exactly_once_across_a_daphne_restart(client_system, alice, follow):
    """Followed as one paper (resumed with since), or through topic "papers" (the client resumes the papers it
    was delivering, unfinished, one by one)."""
    system = client_system
    system.gate.unlink(missing_ok=True)  # closed again: the paper waits in entity extraction
    received: list[PaperEvent] = []
    notices: list = []
    async with quick_client(system) as client:
        if follow == "topic":
            await client.subscribe_papers()
        paper = await asyncio.to_thread(upload, system, alice, "gated.txt", (GATE_MARKER + "\n" + SAMPLE_TEXT).encode())
        if follow == "paper":
            first = await client.subscribe_paper(paper["id"], since=0)
            assert first.recovery.complete
        async with asyncio.timeout(PAPER_TIMEOUT):
            async for message in client:
                if isinstance(message, PaperEvent):
                    received.append(message)
                    if getattr(message, "step", None) == "entity_extraction":
                        break  # held at the gate, mid-paper
            # Daphne goes away; the paper finishes while no one can be told live.
            daphne = system.processes["client-daphne"]
            daphne.terminate()
            await asyncio.to_thread(daphne.wait, 20)
            async for message in client:
                notices.append(message)
                if isinstance(message, Disconnected):
                    break
            before = received[-1].seq
            system.gate.touch()
            await until(lambda: paper_status(paper["id"]) == "completed", PAPER_TIMEOUT)
            system.start("client-daphne", *system.commands["client-daphne"])
            async for message in client:
                if isinstance(message, PaperEvent):
                    assert message.paper_id == paper["id"]
                    received.append(message)
                    if isinstance(message, StatusChanged) and message.final:
                        break
                else:
                    notices.append(message)

    resumed = [n for n in notices if isinstance(n, Subscribed) and n.recovery is not None]
    assert resumed and resumed[-1].recovery.complete and resumed[-1].recovery.replayed > 0, notices
    assert resumed[-1].recovery.since == before
    seqs = [e.seq for e in received]
    assert seqs == list(range(1, len(seqs) + 1)), "every event exactly once, in order"
    log = await asyncio.to_thread(logged_events, system, paper)
    assert [(e["event_type"], e["seq"]) for e in log] == [(e.event_type, e.seq) for e in received]
    assert received[-1].new_status == "completed"
    assert any(isinstance(e, EntityExtracted) and e.entity_name == "NovaNet" for e in received)


async def test_the_token_is_refreshed_on_the_servers_notice_without_reconnecting(client_system, alice):
    # The client's own timer would renew 5 s before expiry (55 s in): the server's notice, 3 s in, comes first.
    messages: list = []
    async with quick_client(client_system, refresh_margin=5) as client:
        first_refresh = client.tokens.refresh
        await client.subscribe_system()
        async with asyncio.timeout(30):
            async for message in client:
                messages.append(message)
                renewed = [m for m in messages if isinstance(m, Authenticated)]
                if len(renewed) == 2 and isinstance(message, SystemStatus):
                    break  # renewed, and events still flow on the same connection
        assert client.tokens.refresh != first_refresh, "the rotated refresh token is kept"
    assert not [m for m in messages if isinstance(m, Disconnected)], messages
    first, second = [m for m in messages if isinstance(m, Authenticated)]
    assert first.username == second.username == "alice"
    assert second.expires_at > first.expires_at


def watch(system, *args: str) -> subprocess.CompletedProcess:
    env = {**system.commands["client-daphne"][1], "PAPERPIPELINE_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "manage.py", "watch_paper", *args, "--url", system.base_url, "--username", "alice"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=PAPER_TIMEOUT,
    )


async def test_watch_paper_exits_0_on_completion_and_prints_the_entities(client_system, alice):
    paper = await asyncio.to_thread(upload, client_system, alice, "nova.txt", SAMPLE_TEXT.encode())
    done = await asyncio.to_thread(watch, client_system, paper["id"])
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert any("entity" in line and "NovaNet" in line for line in lines), done.stdout
    assert any("relationship" in line for line in lines), done.stdout
    assert "status processing -> completed" in lines[-1], done.stdout
    assert "\x1b[" not in done.stdout, "plain output when not on a terminal"


async def test_watch_paper_exits_1_when_the_paper_fails_and_4_for_a_paper_it_cannot_see(client_system, alice):
    paper = await asyncio.to_thread(upload, client_system, alice, "broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40)
    failed = await asyncio.to_thread(watch, client_system, paper["id"])
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "error unreadable_pdf" in failed.stdout
    missing = await asyncio.to_thread(watch, client_system, "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 4 and "no paper" in missing.stderr, (missing.stdout, missing.stderr)


@contextlib.contextmanager
def interruptible_children():
    """Children started inside take SIGINT as a terminal's Ctrl-C reaches them, however pytest was started.

    A shell without job control starts a background command (`make test &`, some CI runners) with SIGINT ignored,
    and an ignored signal stays ignored across fork and exec: the watcher would then never see the interrupt."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def test_watch_paper_all_shows_every_new_paper_until_interrupted(client_system, alice):
    env = {**client_system.commands["client-daphne"][1], "PAPERPIPELINE_PASSWORD": PASSWORD}
    with interruptible_children():
        watcher = await asyncio.create_subprocess_exec(
            sys.executable, "manage.py", "watch_paper", "--all", "--url", client_system.base_url,
            "--username", "alice", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    lines: list[str] = []

    async def read_until(text: str) -> None:
        async with asyncio.timeout(PAPER_TIMEOUT):
            while not lines or text not in lines[-1]:
                line = await watcher.stdout.readline()
                assert line, (lines, await watcher.stderr.read())
                lines.append(line.decode().rstrip("\n"))

    try:
        await read_until("watching every paper you may see")  # subscribed: the upload cannot be missed
        paper = await asyncio.to_thread(upload, client_system, alice, "topic.txt", SAMPLE_TEXT.encode())
        await read_until("status processing -> completed")
        watcher.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await watcher.wait() == 130
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()
    short = paper["id"][:8]
    mine = [line for line in lines if line.startswith(short)]
    assert mine[0].startswith(f"{short} status uploaded -> queued"), lines
    assert any(line.startswith(f"{short} entity MODEL NovaNet") for line in mine), lines
