"""Load generator process: N WebSocket clients that subscribe, then time every event they receive.

Usage: loadgen.py MODE URL N OUT.json [--token T --paper P] [--since S] [--compression] [--storm]. Prints
READY once every client is subscribed (or failed), then stops on stdin EOF and writes to OUT.json: delivery
count, publish→receive latencies (same host clock), failed clients, the seconds until all were subscribed
(and, with --since, until every replayed event arrived) and the CPU seconds this process used while
receiving, so a saturated load generator shows."""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect


class Stats:
    def __init__(self, n: int, replay: int, in_flight: int):
        self.latencies: list[float] = []
        self.deliveries = 0
        self.failures: list[str] = []
        self.pending = n  # clients not yet subscribed (and, with --since, not yet replayed)
        self.replay = replay
        self.all_ready = asyncio.Event()
        if n == 0:  # nothing to wait for: no client will ever call ready()
            self.all_ready.set()
        self.setup_slots = asyncio.Semaphore(in_flight)  # clients connecting and subscribing at one time

    def ready(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.all_ready.set()


async def client(args, stats: Stats) -> None:
    try:
        await receive_all(args, stats)
    except Exception as exc:  # a client that could not connect or subscribe is counted, never waited for
        stats.failures.append(repr(exc))
        stats.ready()


async def receive_all(args, stats: Stats) -> None:
    compression = "deflate" if args.compression else None
    async with stats.setup_slots:
        ws = await connect(args.url, max_size=None, max_queue=None, compression=compression, open_timeout=120)
        try:
            await set_up(args, stats, ws)
        except BaseException:
            await ws.close()
            raise
    stats.ready()
    async with ws:
        async for frame in ws:
            now = time.time_ns()
            event = json.loads(frame)
            if "sent_ns" in event:
                stats.latencies.append((now - event["sent_ns"]) / 1e6)
                stats.deliveries += 1


async def set_up(args, stats: Stats, ws) -> None:
    """Authenticate and subscribe (project), and wait for the replayed events (--since)."""
    if args.mode != "project":
        return
    subscribe = {"type": "subscribe", "paper_id": args.paper}
    if args.since is not None:
        subscribe["since"] = args.since
    await ws.send(json.dumps({"type": "authenticate", "token": args.token}))
    await ws.send(json.dumps(subscribe))
    for _ in range(2):
        reply = json.loads(await ws.recv())
        if reply["type"] not in ("authenticated", "subscribed"):
            raise RuntimeError(f"client setup failed: {reply}")
    replayed = 0
    while replayed < stats.replay:  # the events missed since `since`, from the log
        if "seq" in json.loads(await ws.recv()):
            replayed += 1


async def main(args) -> dict:
    # Load runs let 100 clients per process set up at a time (a server's handshake timeout would otherwise
    # drop clients queued behind thousands); --storm sends them all at once.
    stats = Stats(args.n, args.replay, in_flight=args.n if args.storm else 100)
    started = time.monotonic()
    tasks = [asyncio.create_task(client(args, stats)) for _ in range(args.n)]
    await stats.all_ready.wait()
    setup_s = time.monotonic() - started
    print("READY", flush=True)
    cpu = time.process_time()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # the orchestrator closes stdin
    cpu = time.process_time() - cpu
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"deliveries": stats.deliveries, "latencies_ms": stats.latencies, "failed_clients": stats.failures,
            "setup_s": setup_s, "cpu_s": cpu}


def parse(argv: list[str]):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["project", "naive", "raw", "batched"])
    parser.add_argument("url")
    parser.add_argument("n", type=int)
    parser.add_argument("out")
    parser.add_argument("--token")
    parser.add_argument("--paper")
    parser.add_argument("--since", type=int)
    parser.add_argument("--replay", type=int, default=0, help="events each client expects replayed")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--storm", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    Path(arguments.out).write_text(json.dumps(asyncio.run(main(arguments))))
