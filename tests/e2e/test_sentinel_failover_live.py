"""Redis behind Sentinel: the master is killed mid-paper; no process dies, the paper completes, nothing is lost."""

import asyncio
import json

import pytest

from paperpipeline import redis_clients
from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system
from tests.e2e.recovery import resume_exactly_once
from tests.e2e.slow_extractor import MARKER
from tests.e2e.test_health_live import wait_for_readiness
from tests.e2e.test_pipeline_live import events_until_final, open_client, token, upload
from tests.sentinel_cluster import sentinel_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cluster(tmp_path):
    with sentinel_cluster(tmp_path / "sentinel") as running:
        yield running


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


async def test_master_killed_mid_paper_fails_over_without_loss(cluster, alice):
    # Every process gets the one Sentinel URL: Daphne's fan-out and publisher, the workers (broker, publisher,
    # heartbeat) and beat.
    with running_system(redis_url=cluster.url, name="sentinel-", HEALTH_CACHE_SECONDS="1",
                        WORKER_HEARTBEAT_INTERVAL="1") as system:
        ready = await asyncio.to_thread(wait_for_readiness, system, 200)
        assert ready.status_code == 200, (ready.text, system.log_tails())

        access = await token(system, "alice", "pw-alice-123")
        staying = await open_client(system, access, "papers")
        paper = await upload(system, access, "slow.txt", (MARKER + "\n" + SAMPLE_TEXT).encode())
        seen: dict[int, dict] = {}
        heard: list[int] = []  # every seq the connected client received, duplicates included
        async with asyncio.timeout(60):
            while True:
                event = json.loads(await staying.recv())
                seen[event["seq"]] = event
                heard.append(event["seq"])
                if event.get("step") == "entity_extraction" and event["step_progress"] > 0:
                    break

        # SIGKILL the master while the worker is mid-paper; the sentinels promote the replica.
        old_port = await asyncio.to_thread(cluster.kill_master)
        new_port = await asyncio.to_thread(cluster.wait_for_failover, old_port)
        assert new_port != old_port

        # The paper completes, and the client that stayed connected hears its end: Daphne's fan-out found the
        # new master and subscribed again.
        async with asyncio.timeout(90):
            final = await events_until_final(staying, paper["id"])
        assert final[-1]["new_status"] == "completed", system.log_tails()
        for event in final:
            seen.setdefault(event["seq"], event)
            heard.append(event["seq"])
        assert len(heard) == len(set(heard)), heard  # what it did receive, it received once

        # A client that resumes with `since` receives every event after it exactly once.
        resumed = await resume_exactly_once(system, access, paper["id"], seen)

        # The workers still take work from the new master: a paper uploaded after the failover completes too
        # (a worker that lost its broker mid-task must reconnect, not shut down once the task is done).
        after = await upload(system, access, "after.txt", SAMPLE_TEXT.encode())
        async with asyncio.timeout(90):
            final = await events_until_final(staying, after["id"])
        assert final[-1]["new_status"] == "completed", system.log_tails()

        # The task that ran through the failover was acknowledged on the new master: nothing is left for Redis to
        # deliver again once kombu's visibility timeout passes.
        broker = redis_clients.client(cluster.url, socket_timeout=5)
        unacknowledged = [entry for entry in broker.hvals("unacked") if b"papers.tasks.process_paper" in entry]
        broker.close()
        assert unacknowledged == [], system.log_tails()

        # Readiness follows the new master (Redis, the workers' reports in it, the fan-out's round trip).
        ready = await asyncio.to_thread(wait_for_readiness, system, 200)
        assert ready.status_code == 200, (ready.text, system.log_tails())

        crashed = {name: p.returncode for name, p in system.processes.items() if p.poll() is not None}
        assert crashed == {}, system.log_tails()
        await staying.close()
        await resumed.close()
