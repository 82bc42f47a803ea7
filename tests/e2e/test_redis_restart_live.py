"""Redis restarted while clients are connected and a paper is processing: nothing crashes, nothing is lost."""

import asyncio
import json
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from paperpipeline.redis_server import start_redis_server
from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system
from tests.e2e.slow_extractor import MARKER
from tests.e2e.test_pipeline_live import events_until_final, open_client, request, token, upload
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def private_redis():
    """A redis-server of this test's own, which it may stop and start again on the same port."""
    workdir = Path(tempfile.mkdtemp(prefix="redis-restart-"))
    process, url = start_redis_server(workdir=workdir)
    state = {"process": process, "url": url, "workdir": workdir}
    yield state
    state["process"].terminate()
    state["process"].wait(timeout=10)


def contiguous_high_water(seqs: set[int]) -> int:
    """The last seq before the first gap: what a client passes as `since` to resume without loss."""
    seq = 0
    while seq + 1 in seqs:
        seq += 1
    return seq


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


async def test_redis_restart_mid_paper_loses_nothing(private_redis, alice):
    with running_system(redis_url=private_redis["url"], name="restart-") as system:
        access = await token(system, "alice", "pw-alice-123")
        staying = await open_client(system, access, "papers")
        paper = await upload(system, access, "slow.txt", (MARKER + "\n" + SAMPLE_TEXT).encode())
        seen: dict[int, dict] = {}
        async with asyncio.timeout(60):
            while True:
                event = json.loads(await staying.recv())
                seen[event["seq"]] = event
                if event.get("step") == "entity_extraction" and event["step_progress"] > 0:
                    break

        # Restart Redis (it keeps nothing on disk) while the worker is mid-paper.
        address = urlsplit(private_redis["url"])
        private_redis["process"].terminate()
        private_redis["process"].wait(timeout=10)
        await asyncio.sleep(1)  # an outage, not a blip: the worker publishes into the void meanwhile
        private_redis["process"], _ = start_redis_server(
            workdir=private_redis["workdir"], port=address.port, password=address.password
        )

        # A client that stayed connected receives events published after the restart: Daphne resubscribed.
        async with asyncio.timeout(60):
            final = await events_until_final(staying, paper["id"])
        assert final[-1]["new_status"] == "completed", system.log_tails()
        for event in final:
            seen[event["seq"]] = event

        # A client that reconnects with `since` recovers everything, exactly once.
        since = contiguous_high_water(set(seen))
        assert since < max(seen), "the outage cost the connected client events: there is something to recover"
        resumed = await open_client(system, access)
        reply = await request(resumed, {"type": "subscribe", "paper_id": paper["id"], "since": since, "id": "r"})
        assert reply["recovery"]["complete"] is True
        replayed = [
            json.loads(await asyncio.wait_for(resumed.recv(), 10)) for _ in range(reply["recovery"]["replayed"])
        ]
        received = [seen[seq] for seq in range(1, since + 1)] + replayed
        assert [e["seq"] for e in received] == list(range(1, reply["snapshot"]["seq"] + 1))
        for event in received:
            assert_wire_event(event)

        logged = await asyncio.to_thread(
            requests.get, f"{system.base_url}/api/papers/{paper['id']}/events/",
            headers={"Authorization": f"Bearer {access}"}, timeout=10,
        )
        assert [e for e in logged.json()["events"] if e["seq"] > 1] == [e for e in received if e["seq"] > 1]
        crashed = {name: p.returncode for name, p in system.processes.items() if p.poll() is not None}
        assert crashed == {}, system.log_tails()
        await staying.close()
        await resumed.close()
