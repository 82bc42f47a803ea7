"""Scale-out, end to end: two Daphne processes and two pipeline workers on one Redis and one database.

Every client, on either Daphne, receives every event of the papers it follows exactly once and in seq order,
whichever worker processed the paper and whichever Daphne took the upload; both workers process papers.
"""

import asyncio
import json
import socket
import time
from types import SimpleNamespace

import pytest
import requests
from celery import Celery
from websockets.asyncio.client import connect

from tests.conftest import SAMPLE_TEXT, papers_dir
from tests.e2e.conftest import running_system
from tests.e2e.slow_extractor import GATE_MARKER
from tests.e2e.test_pipeline_live import open_client, request, token, upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT = 120  # generous: two cores shared with other work; every wait below ends on an event, not a clock


@pytest.fixture
def alice(django_user_model):
    django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    return ("alice", "pw-alice-123")


class Client:
    """A WebSocket client whose frames a background task collects, so the test can await conditions on them."""

    def __init__(self, label: str, ws, papers: set[str] | None = None):
        self.label, self.ws = label, ws
        self.papers = papers  # the papers it subscribed to; None: topic "papers"
        self.events: list[dict] = []
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            message = json.loads(frame)
            if "event_type" in message and "paper_id" in message:
                async with self.changed:
                    self.events.append(message)
                    self.changed.notify_all()

    def has_status(self, paper_id: str, status: str) -> bool:
        return any(e["paper_id"] == paper_id and e.get("new_status") == status for e in self.events)

    async def wait_for_status(self, paper_ids, status: str) -> None:
        async with asyncio.timeout(TIMEOUT), self.changed:
            await self.changed.wait_for(
                lambda: self.reader.done() or all(self.has_status(p, status) for p in paper_ids))
        assert all(self.has_status(p, status) for p in paper_ids), (self.label, self.reader)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self.reader, return_exceptions=True)


async def paper_client(daphne, access: str, paper_ids: list[str], label: str) -> Client:
    """Subscribe to each paper with since=0: the log so far is replayed, then live events follow, no gap."""
    ws = await connect(daphne.ws_url)
    assert (await request(ws, {"type": "authenticate", "token": access, "id": "a"}))["type"] == "authenticated"
    for paper_id in paper_ids:
        reply = await request(ws, {"type": "subscribe", "paper_id": paper_id, "since": 0, "id": paper_id})
        assert reply["type"] == "subscribed" and reply["recovery"]["complete"], reply
    return Client(label, ws, set(paper_ids))


async def event_log(daphne, access: str, paper_id: str) -> list[dict]:
    """The paper's whole event log from the API, page by page."""
    events: list[dict] = []
    while True:
        response = await asyncio.to_thread(
            requests.get, f"{daphne.base_url}/api/papers/{paper_id}/events/", params={"since": len(events)},
            headers={"Authorization": f"Bearer {access}"}, timeout=10,
        )
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        if not page["has_more"]:
            return events


def one_task_each(redis_url: str, workers: list[str], task_ids: set[str]) -> dict[str, list[str]]:
    """The task ids each worker reports running, asked again until every worker runs exactly one of `task_ids`
    and together they run all of them, or TIMEOUT passes. A worker under load can answer after the inspect
    timeout, or before the notice that its pool child started the task has reached it."""
    # An app of its own: `inspect(connection=...)` of the project's app would still publish on its default broker.
    control = Celery("scale-out-control", broker=redis_url, set_as_current=False).control
    deadline = time.monotonic() + TIMEOUT
    while True:
        replies = control.inspect(destination=workers, timeout=5).active() or {}
        running = {node: [task["id"] for task in tasks] for node, tasks in replies.items()}
        if sorted(running) == sorted(workers) and all(len(ids) == 1 for ids in running.values()) and (
            {ids[0] for ids in running.values()} == task_ids
        ):
            return running
        if time.monotonic() > deadline:
            raise AssertionError(f"workers {workers} run {running}, expected one each of {task_ids}")


def node_name(system, process: str) -> str:
    """A worker's Celery node name, from its command line (`-n papers-<port>@%h`)."""
    command = system.commands[process][0]
    return command[command.index("-n") + 1].replace("%h", socket.gethostname())


async def test_two_daphnes_and_two_workers_deliver_every_event_to_every_client(own_redis, alice, tmp_path):
    gate = tmp_path / "gate-open"
    # One process per worker: a worker holding a gated paper has no free slot (prefetch 1, acks_late), so a
    # second gated paper can only be taken by the other worker. That makes "both workers work" deterministic.
    with running_system(redis_url=own_redis, name="scale-", daphnes=2, workers=2, concurrency="1",
                        E2E_GATE_FILE=str(gate)) as system:
        daphnes = [SimpleNamespace(base_url=b, ws_url=w) for b, w in zip(system.base_urls, system.ws_urls, strict=True)]
        assert len(daphnes) == 2 and daphnes[0].base_url != daphnes[1].base_url
        workers = [node_name(system, "scale-worker"), node_name(system, "scale-worker-2")]
        assert workers[0] != workers[1]
        access = await token(daphnes[1], *alice)
        clients: list[Client] = []
        try:
            for index, daphne in enumerate(daphnes, 1):
                clients.append(Client(f"daphne-{index} topic", await open_client(daphne, access, "papers")))

            # Paper A is taken by one worker and held at the gate; paper B then can only go to the other one.
            gated = (GATE_MARKER + "\n" + SAMPLE_TEXT).encode()
            paper_a = await upload(daphnes[0], access, "gated-a.txt", gated)
            await clients[0].wait_for_status([paper_a["id"]], "processing")
            paper_b = await upload(daphnes[0], access, "gated-b.txt", gated)
            await clients[0].wait_for_status([paper_b["id"]], "processing")
            # Each worker runs one of the two papers, at the same time: both take work from the one queue.
            await asyncio.to_thread(one_task_each, own_redis, workers, {paper_a["task_id"], paper_b["task_id"]})

            # Paper C, a real PDF, waits in the queue while both workers are held.
            pdf = (papers_dir() / "Few_shot_NER.pdf").read_bytes()
            paper_c = await upload(daphnes[0], access, "Few_shot_NER.pdf", pdf)
            ids = [paper_a["id"], paper_b["id"], paper_c["id"]]
            # Per Daphne: a client per paper, subscribed mid-paper (replay from seq 1, then live).
            for index, daphne in enumerate(daphnes, 1):
                for paper_id in ids:
                    clients.append(await paper_client(daphne, access, [paper_id], f"daphne-{index} paper {paper_id}"))

            gate.touch()
            for client in clients:
                await client.wait_for_status(client.papers or ids, "completed")

            logs = {paper_id: await event_log(daphnes[1], access, paper_id) for paper_id in ids}
            for paper_id, log in logs.items():
                assert [e["seq"] for e in log] == list(range(1, len(log) + 1)), paper_id
                assert log[-1]["new_status"] == "completed", (paper_id, log[-1])
            for client in clients:
                followed = client.papers or set(ids)
                assert {e["paper_id"] for e in client.events} == followed, client.label
                for paper_id in followed:
                    received = [e for e in client.events if e["paper_id"] == paper_id]
                    # The (paper_id, seq) list first, for a readable failure; then the payloads themselves.
                    assert [(e["paper_id"], e["seq"]) for e in received] == [
                        (e["paper_id"], e["seq"]) for e in logs[paper_id]], client.label
                    assert received == logs[paper_id], client.label
        finally:
            for client in clients:
                await client.close()
            gate.touch()
