"""LOG_FORMAT=json on the real system: every line every process writes is one JSON object, the events of a
paper's run are there with their connection, user and paper, and no token or password is anywhere."""

import asyncio
import json
import time

import pytest
import requests
from websockets.asyncio.client import connect

from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system
from tests.e2e.test_pipeline_live import events_until_final, open_client, request, token, upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "Pw-logs-7Qz-unique"
WRONG_PASSWORD = "Wrong-pw-3Kx-unique"
# A JWT-shaped token the server refuses: it must not be logged either.
FORGED = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLW5vdC12YWxpZA"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password=PASSWORD)


def records(system) -> dict[str, list[dict]]:
    """Every line of every process's log, parsed; a line that is not a JSON object fails the test."""
    parsed = {}
    for name, path in system.logs.items():
        parsed[name] = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"{path}:{number} is not JSON: {line!r}") from None
            assert isinstance(record, dict) and {"event", "level", "timestamp"} <= set(record), (path, line)
            parsed[name].append(record)
    return parsed


def wait_for_line(system, name: str, text: str, timeout: float = 30) -> None:
    """Poll a process's log until a line with text appears (a log file offers no event to await)."""
    deadline = time.monotonic() + timeout
    while text not in system.logs[name].read_text():
        assert time.monotonic() < deadline, f"{text!r} never logged by {name}:\n" + system.log_tails()
        time.sleep(0.1)


async def test_json_logs_of_a_paper_run_hold_its_events_and_no_secret(alice, own_redis, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")  # the launcher's commands follow it (celery --quiet), as in make run
    with running_system(redis_url=own_redis, name="jsonlogs-", LOG_FORMAT="json") as system:
        refused = await asyncio.to_thread(
            requests.post, f"{system.base_url}/api/token/",
            json={"username": "alice", "password": WRONG_PASSWORD}, timeout=10,
        )
        assert refused.status_code == 401
        access = await token(system, "alice", PASSWORD)

        forged = await connect(system.ws_url)
        reply = await request(forged, {"type": "authenticate", "token": FORGED, "id": "f"})
        assert reply["code"] == "authentication_failed"
        await forged.wait_closed()

        ws = await open_client(system, access, "papers")
        paper = await upload(system, access, "novanet.txt", SAMPLE_TEXT.encode())
        reply = await request(ws, {"type": "subscribe", "paper_id": paper["id"], "since": 0, "id": "s"})
        assert reply["type"] == "subscribed", reply
        final = await events_until_final(ws, paper["id"])
        assert final[-1]["new_status"] == "completed", system.log_tails()
        await ws.close()
        await asyncio.to_thread(wait_for_line, system, "jsonlogs-daphne", '"ws.close"')
        await asyncio.to_thread(wait_for_line, system, "jsonlogs-worker", '"task.end"')
    # Every process stopped: the logs are complete, shutdown lines included.

    text = "\n".join(path.read_text() for path in system.logs.values())
    assert "eyJ" not in text
    assert PASSWORD not in text and WRONG_PASSWORD not in text
    logged = records(system)

    web = logged["jsonlogs-daphne"]
    by_event: dict[str, list[dict]] = {}
    for record in web:
        by_event.setdefault(record["event"], []).append(record)
    authenticated = [r for r in by_event["ws.authenticated"] if r["method"] == "token"]
    assert len(authenticated) == 1 and authenticated[0]["user_id"] == alice.pk, authenticated
    connection_id = authenticated[0]["connection_id"]
    mine = [r for r in web if r.get("connection_id") == connection_id]
    assert [r["event"] for r in mine if r["event"].startswith("ws.")] == [
        "ws.connect", "ws.authenticated", "ws.subscribed", "ws.subscribed", "ws.close",
    ], mine
    assert mine[2]["topic"] == "papers" and mine[3]["paper_id"] == paper["id"] and mine[3]["since"] == 0
    assert mine[-1]["close_code"] == 1000 and mine[-1]["user_id"] == alice.pk
    failed = [r for r in by_event["ws.error"] if r["code"] == "authentication_failed"]
    assert len(failed) == 1 and failed[0]["close_code"] == 4001 and "user_id" not in failed[0]
    closed_forged = [r for r in by_event["ws.close"] if r["connection_id"] == failed[0]["connection_id"]]
    assert [r["reason"] for r in closed_forged] == ["authentication_failed"]
    requests_logged = [(r["method"], r["path"], r["status"]) for r in by_event["http.request"]]
    assert ("POST", "/api/token/", 401) in requests_logged and ("POST", "/api/papers/", 201) in requests_logged

    tasks = [r for r in logged["jsonlogs-worker"] if r.get("paper_id") == paper["id"]]
    start = next(r for r in tasks if r["event"] == "task.start")
    end = next(r for r in tasks if r["event"] == "task.end")
    assert start["task"] == end["task"] == "papers.tasks.process_paper" and start["task_id"] == end["task_id"]
    assert end["state"] == "SUCCESS" and end["duration_ms"] > 0
