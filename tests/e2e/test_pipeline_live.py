"""End to end: upload to a real Daphne, a real Celery worker processes, a real WebSocket client watches."""

import asyncio
import json

import pytest
import requests
from websockets.asyncio.client import connect

from tests.conftest import make_pdf, papers_dir
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAPER_TIMEOUT = 180


@pytest.fixture
def accounts(django_user_model):
    django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    django_user_model.objects.create_user(username="bob", password="pw-bob-123")
    return {"alice": "pw-alice-123", "bob": "pw-bob-123"}


async def token(system, username: str, password: str) -> str:
    response = await asyncio.to_thread(
        requests.post, f"{system.base_url}/api/token/", json={"username": username, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["access"]


async def upload(system, access: str, name: str, content: bytes) -> dict:
    response = await asyncio.to_thread(
        requests.post, f"{system.base_url}/api/papers/", files={"file": (name, content)},
        headers={"Authorization": f"Bearer {access}"}, timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def request(ws, message: dict) -> dict:
    """Send a client message and return the reply carrying its id."""
    await ws.send(json.dumps(message))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if reply.get("id") == message.get("id"):
            return reply


async def open_client(system, access: str, *topics: str):
    ws = await connect(system.ws_url)
    assert (await request(ws, {"type": "authenticate", "token": access, "id": "a"}))["type"] == "authenticated"
    for topic in topics:
        reply = await request(ws, {"type": "subscribe", "topic": topic, "id": topic})
        assert reply["type"] == "subscribed", reply
    return ws


async def events_until_final(ws, paper_id: str) -> list[dict]:
    """Collect this paper's events until its status becomes completed or failed."""
    events = []
    async with asyncio.timeout(PAPER_TIMEOUT):
        while True:
            message = json.loads(await ws.recv())
            if message.get("paper_id") != paper_id or "event_type" not in message:
                continue
            events.append(message)
            if message["event_type"] == "status_changed" and message["new_status"] in ("completed", "failed"):
                return events


async def test_real_pdf_streams_every_step_to_the_owner_and_nothing_to_others(live_system, accounts):
    alice = await token(live_system, "alice", accounts["alice"])
    bob = await token(live_system, "bob", accounts["bob"])
    alice_ws = await open_client(live_system, alice, "papers")
    bob_ws = await open_client(live_system, bob, "papers")

    pdf = (papers_dir() / "LayoutLM.pdf").read_bytes()
    paper = await upload(live_system, alice, "LayoutLM.pdf", pdf)
    events = await events_until_final(alice_ws, paper["id"])

    for event in events:
        assert_wire_event(event)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "gap-free, in order, no duplicates"
    statuses = [(e["old_status"], e["new_status"]) for e in events if e["event_type"] == "status_changed"]
    assert statuses == [("uploaded", "queued"), ("queued", "processing"), ("processing", "completed")], (
        statuses, live_system.log_tails())
    kinds = [e["event_type"] for e in events]
    assert kinds.index("progress_updated") < kinds.index("entity_extracted") < kinds.index("relationship_extracted")
    steps = {e["step"] for e in events if e["event_type"] == "progress_updated"}
    assert steps == {"text_extraction", "entity_extraction", "relationship_extraction"}
    progress = [e["progress"] for e in events if e["event_type"] == "progress_updated"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    entities = {(e["entity_type"], e["entity_name"]) for e in events if e["event_type"] == "entity_extracted"}
    assert {("MODEL", "LayoutLM"), ("DATASET", "FUNSD"), ("DATASET", "SROIE"), ("DATASET", "RVL-CDIP")} <= entities
    entity_ids = {e["entity_id"] for e in events if e["event_type"] == "entity_extracted"}
    for rel in (e for e in events if e["event_type"] == "relationship_extracted"):
        assert {rel["source_id"], rel["target_id"]} <= entity_ids

    # The API's event log holds exactly what was pushed.
    logged = await asyncio.to_thread(
        requests.get, f"{live_system.base_url}/api/papers/{paper['id']}/events/",
        headers={"Authorization": f"Bearer {alice}"}, timeout=10,
    )
    assert logged.json()["events"] == events

    # Bob: nothing on his topic, not found over the WebSocket, 404 over the API.
    assert (await request(bob_ws, {"type": "ping", "id": "p"}))["type"] == "pong"
    hidden = await request(bob_ws, {"type": "subscribe", "paper_id": paper["id"], "id": "s"})
    assert (hidden["type"], hidden["code"]) == ("error", "not_found")
    assert (await asyncio.to_thread(
        requests.get, f"{live_system.base_url}/api/papers/{paper['id']}/",
        headers={"Authorization": f"Bearer {bob}"}, timeout=10,
    )).status_code == 404
    await bob_ws.send(json.dumps({"type": "ping", "id": "last"}))
    assert json.loads(await asyncio.wait_for(bob_ws.recv(), 10))["id"] == "last", "bob received a foreign event"
    await alice_ws.close()
    await bob_ws.close()


async def test_corrupt_pdf_ends_in_an_error_event_and_failed(live_system, accounts):
    alice = await token(live_system, "alice", accounts["alice"])
    ws = await open_client(live_system, alice, "papers")
    corrupt = b"%PDF-1.7\n" + bytes(range(256)) * 40
    paper = await upload(live_system, alice, "broken.pdf", corrupt)
    events = await events_until_final(ws, paper["id"])
    error = next(e for e in events if e["event_type"] == "error")
    assert_wire_event(error)
    assert error["details"]["step"] == "text_extraction"
    assert error["details"]["task_id"] == paper["task_id"]
    assert error["error_code"] == "unreadable_pdf"
    assert (events[-1]["old_status"], events[-1]["new_status"]) == ("processing", "failed")
    await ws.close()


async def test_subscriber_to_one_paper_gets_snapshot_then_events(live_system, accounts):
    alice = await token(live_system, "alice", accounts["alice"])
    ws = await open_client(live_system, alice)
    text = "TinyNet: a small model\nWe propose TinyNet, trained on ImageNet and evaluated on COCO.\n" * 30
    paper = await upload(live_system, alice, "tiny.pdf", make_pdf(text))
    reply = await request(ws, {"type": "subscribe", "paper_id": paper["id"], "id": "s"})
    assert reply["snapshot"]["paper_id"] == paper["id"]
    seen_up_to = reply["snapshot"]["seq"]
    status = reply["snapshot"]["status"]
    if status not in ("completed", "failed"):
        events = await events_until_final(ws, paper["id"])
        assert events[0]["seq"] == seen_up_to + 1, "live events continue right after the snapshot"
        status = events[-1]["new_status"]
    assert status == "completed"
    await ws.close()


async def test_system_status_arrives_with_real_figures(live_system, accounts):
    alice = await token(live_system, "alice", accounts["alice"])
    ws = await open_client(live_system, alice, "system")
    async with asyncio.timeout(30):
        while True:
            event = json.loads(await ws.recv())
            if event.get("event_type") == "system_status" and event["active_workers"] >= 1:
                break
    assert_wire_event(event)
    assert event["queue_size"] >= 0 and 0 <= event["system_load"]
    await ws.close()
