"""Real faults on real processes: a worker process killed with SIGKILL mid-paper, a client dropped mid-paper."""

import asyncio
import json
import os
import signal

import pytest
import requests

from paperpipeline.celery import app
from tests.conftest import SAMPLE_TEXT
from tests.e2e.slow_extractor import MARKER
from tests.e2e.test_pipeline_live import events_until_final, open_client, request, token, upload
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(django_user_model):
    django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    return ("alice", "pw-alice-123")


def worker_pid_running(task_id: str) -> int | None:
    """The pid of the prefork child running a task, as the worker reports it."""
    for tasks in (app.control.inspect(timeout=2).active() or {}).values():
        for task in tasks:
            if task["id"] == task_id:
                return task["worker_pid"]
    return None


async def test_sigkill_of_the_worker_process_mid_paper_leads_to_a_clean_retry(live_system, alice):
    access = await token(live_system, *alice)
    ws = await open_client(live_system, access, "papers")
    paper = await upload(live_system, access, "slow.txt", (MARKER + "\n" + SAMPLE_TEXT).encode())
    async with asyncio.timeout(60):
        while True:  # wait until the slow entity step is under way
            event = json.loads(await ws.recv())
            if event.get("step") == "entity_extraction" and event["step_progress"] > 0:
                break
    pid = await asyncio.to_thread(worker_pid_running, paper["task_id"])
    assert pid, live_system.log_tails()
    os.kill(pid, signal.SIGKILL)

    events = await events_until_final(ws, paper["id"])
    for event in events:
        assert_wire_event(event)
    changes = [e for e in events if e["event_type"] == "status_changed"]
    statuses = [(e["old_status"], e["new_status"]) for e in changes]
    assert statuses == [("processing", "queued"), ("queued", "processing"), ("processing", "completed")], (
        statuses, live_system.log_tails())
    assert changes[0]["message"] == "Retrying after the worker was lost (attempt 2 of 3)"
    names = [(e["entity_type"], e["entity_name"]) for e in events if e["event_type"] == "entity_extracted"]
    assert ("MODEL", "NovaNet") in names and len(names) == len(set(names))
    await ws.close()


async def test_a_client_dropped_mid_paper_resumes_with_since_and_sees_every_event_once(live_system, alice):
    access = await token(live_system, *alice)
    first = await open_client(live_system, access, "papers")
    paper = await upload(live_system, access, "slow.txt", (MARKER + "\n" + SAMPLE_TEXT).encode())
    received: list[dict] = []
    async with asyncio.timeout(60):
        while not received or received[-1].get("step") != "entity_extraction":
            received.append(json.loads(await first.recv()))
    await first.close()  # dropped mid-paper; the paper goes on without this client

    resumed = await open_client(live_system, access)
    reply = await request(resumed, {"type": "subscribe", "paper_id": paper["id"], "since": received[-1]["seq"],
                                    "id": "resume"})
    assert reply["recovery"]["complete"] is True
    received += await events_until_final(resumed, paper["id"])
    assert [e["seq"] for e in received] == list(range(1, len(received) + 1)), "every event exactly once"
    assert received[-1]["new_status"] == "completed"
    logged = await asyncio.to_thread(
        requests.get, f"{live_system.base_url}/api/papers/{paper['id']}/events/",
        headers={"Authorization": f"Bearer {access}"}, timeout=10,
    )
    assert logged.json()["events"] == received
    await resumed.close()
