"""Resuming a paper with `since` after an outage, checked the same way by every fault test."""

import asyncio
import json

import requests

from tests.e2e.test_pipeline_live import open_client, request
from tests.schemas import assert_wire_event


def contiguous_high_water(seqs: set[int]) -> int:
    """The last seq before the first gap: what a client passes as `since` to resume without loss."""
    seq = 0
    while seq + 1 in seqs:
        seq += 1
    return seq


async def resume_exactly_once(system, access: str, paper_id: str, seen: dict[int, dict]):
    """Reconnect, subscribe with `since` = what `seen` holds without a gap, and check that the replay fills in
    every later event exactly once, each valid on the wire, and that together they are the paper's event log.
    Returns the resumed client, still open."""
    since = contiguous_high_water(set(seen))
    resumed = await open_client(system, access)
    reply = await request(resumed, {"type": "subscribe", "paper_id": paper_id, "since": since, "id": "r"})
    assert reply["recovery"]["complete"] is True
    replayed = [json.loads(await asyncio.wait_for(resumed.recv(), 10)) for _ in range(reply["recovery"]["replayed"])]
    assert [e["seq"] for e in replayed] == list(range(since + 1, reply["snapshot"]["seq"] + 1))
    received = [seen[seq] for seq in range(1, since + 1)] + replayed
    assert [e["seq"] for e in received] == list(range(1, reply["snapshot"]["seq"] + 1))
    for event in received:
        assert_wire_event(event)
    logged = await asyncio.to_thread(
        requests.get, f"{system.base_url}/api/papers/{paper_id}/events/",
        headers={"Authorization": f"Bearer {access}"}, timeout=10,
    )
    assert [e for e in logged.json()["events"] if e["seq"] > 1] == [e for e in received if e["seq"] > 1]
    return resumed
