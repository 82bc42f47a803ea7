"""Load generator process: N WebSocket clients that subscribe, then time every event they receive.

Usage: loadgen.py MODE URL N OUT.json [TOKEN PAPER_ID]; prints READY once all are subscribed, stops on
stdin EOF, writes delivery counts and latencies (publish → receive, same host clock) to OUT.json."""

import asyncio
import json
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect


async def client(mode, url, token, paper_id, latencies, counts, ready, failures):
    try:
        await receive_all(mode, url, token, paper_id, latencies, counts, ready)
    except Exception as exc:  # a client that could not connect or subscribe is counted, never waited for
        failures.append(repr(exc))
        ready.release()


async def receive_all(mode, url, token, paper_id, latencies, counts, ready):
    async with connect(url, max_size=None, max_queue=None, compression=None, open_timeout=60) as ws:
        if mode == "project":
            await ws.send(json.dumps({"type": "authenticate", "token": token}))
            await ws.send(json.dumps({"type": "subscribe", "paper_id": paper_id}))
            for _ in range(2):
                reply = json.loads(await ws.recv())
                if reply["type"] not in ("authenticated", "subscribed"):
                    raise RuntimeError(f"client setup failed: {reply}")
        ready.release()
        async for frame in ws:
            now = time.time_ns()
            event = json.loads(frame)
            if "sent_ns" in event:
                latencies.append((now - event["sent_ns"]) / 1e6)
                counts[0] += 1


async def main(mode, url, n, token=None, paper_id=None):
    latencies, counts, ready, failures = [], [0], asyncio.Semaphore(0), []
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(client(mode, url, token, paper_id, latencies, counts, ready, failures)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # a connect ramp, not a storm (the storm is measured separately)
    for _ in range(n):
        await ready.acquire()
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # the orchestrator closes stdin
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"deliveries": counts[0], "latencies_ms": latencies, "failed_clients": failures}


if __name__ == "__main__":
    mode, url, n, out, *rest = sys.argv[1:]
    Path(out).write_text(json.dumps(asyncio.run(main(mode, url, int(n), *rest))))
