"""Redis restarted while clients are connected and a paper is processing: nothing crashes, nothing is lost."""

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from paperpipeline.redis_server import start_redis_server
from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system
from tests.e2e.recovery import contiguous_high_water, resume_exactly_once
from tests.e2e.slow_extractor import MARKER
from tests.e2e.test_pipeline_live import events_until_final, open_client, token, upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


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
        assert contiguous_high_water(set(seen)) < max(seen), "the outage cost the connected client events"
        resumed = await resume_exactly_once(system, access, paper["id"], seen)
        crashed = {name: p.returncode for name, p in system.processes.items() if p.poll() is not None}
        assert crashed == {}, system.log_tails()
        await staying.close()
        await resumed.close()
