"""WEB_PROCESSES=2 under `make run`'s launcher: two Daphne processes share one port (SO_REUSEPORT), the kernel
spreads the connections over both, and clients on either process receive every event of a paper."""

import asyncio
import signal
import subprocess
import sys
from types import SimpleNamespace

import psutil
import pytest
from websockets.asyncio.client import connect

from tests.conftest import SAMPLE_TEXT
from tests.e2e.test_launcher_live import ROOT, RunningLauncher
from tests.e2e.test_pipeline_live import events_until_final, request, token, upload

pytestmark = pytest.mark.e2e

MAX_CLIENTS = 64  # the kernel hashes each connection to one socket: this many leave none empty, but for 2^-63


def daphnes(launcher: RunningLauncher) -> list[psutil.Process]:
    """The launcher's Daphne children."""
    return [child for child in psutil.Process(launcher.process.pid).children()
            if "realtime.server" in " ".join(child.cmdline())]


def serving_process(daphne_processes: list[psutil.Process], client_port: int) -> int:
    """The pid of the Daphne process holding the server side of the client's connection."""
    for process in daphne_processes:
        if any(c.raddr and c.raddr.port == client_port for c in process.net_connections(kind="tcp")):
            return process.pid
    raise AssertionError(f"no Daphne process holds the connection from port {client_port}")


def create_user(launcher: RunningLauncher, username: str, password: str) -> None:
    """A user in the launcher's database (its Redis is not needed: an unreachable one only logs a warning)."""
    env = {**launcher.env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    script = ("from django.contrib.auth.models import User; "
              f"User.objects.create_user({username!r}, password={password!r})")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)


@pytest.fixture
def launcher(tmp_path):
    running = RunningLauncher(tmp_path, WEB_PROCESSES="2")
    yield running
    running.cleanup()


async def test_two_web_processes_share_the_port_and_every_client_gets_the_papers_events(launcher):
    launcher.wait_for(launcher.answers_http, "Daphne to answer HTTP")
    processes = launcher.wait_for(lambda: d if len(d := daphnes(launcher)) == 2 else None, "two Daphne processes")
    assert "2 Daphne processes share" in launcher.log()
    create_user(launcher, "alice", "pw-alice-123")
    system = SimpleNamespace(base_url=f"http://127.0.0.1:{launcher.port}",
                             ws_url=f"ws://127.0.0.1:{launcher.port}/ws/papers")
    access = await token(system, "alice", "pw-alice-123")

    clients, served_by = [], {}
    try:
        while len(set(served_by.values())) < 2 and len(clients) < MAX_CLIENTS:
            ws = await connect(system.ws_url)
            clients.append(ws)
            assert (await request(ws, {"type": "authenticate", "token": access, "id": "a"}))["type"] == "authenticated"
            assert (await request(ws, {"type": "subscribe", "topic": "papers", "id": "s"}))["type"] == "subscribed"
            served_by[ws] = serving_process(processes, ws.local_address[1])
        assert set(served_by.values()) == {p.pid for p in processes}, "connections did not spread over both"

        paper = await upload(system, access, "novanet.txt", SAMPLE_TEXT.encode())
        received = await asyncio.gather(*(events_until_final(ws, paper["id"]) for ws in clients))
        assert received[0][-1]["new_status"] == "completed", received[0][-1]
        seqs = [[event["seq"] for event in events] for events in received]
        assert seqs[0] == list(range(seqs[0][0], seqs[0][-1] + 1)), "gap-free, in order"
        assert all(s == seqs[0] for s in seqs), "every client on either process got the same events"
    finally:
        for ws in clients:
            await ws.close()
    launcher.signal_group(signal.SIGTERM)
    launcher.process.wait(timeout=60)
    assert launcher.process.returncode == 0, launcher.log()
