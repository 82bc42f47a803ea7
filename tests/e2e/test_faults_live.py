"""Real faults on real processes: a Celery worker process killed with SIGKILL mid-paper."""

import asyncio
import json
import os
import signal

import pytest

from paperpipeline.celery import app
from tests.conftest import SAMPLE_TEXT
from tests.e2e.slow_extractor import MARKER
from tests.e2e.test_pipeline_live import events_until_final, open_client, token, upload
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
