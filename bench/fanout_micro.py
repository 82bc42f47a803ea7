"""In-process micro benchmark of the fan-out's delivery path: no Redis, no sockets, no load generator.

    .venv/bin/python bench/fanout_micro.py [--connections 1000] [--events 200] [--batch 1] [--topic] [--profile]

Builds `--connections` real `PaperConsumer`s (connected, authenticated and subscribed to one paper through their
own code; the database read of the subscribe and Redis's SUBSCRIBE are replaced by stubs) on the project's Daphne
writer over a transport that drops the bytes. Then hands `--events` paper events to the fan-out's delivery loop
(`Fanout._deliver`), `--batch` per batch, and prints the CPU time per delivery, the garbage collections that ran
and the memory the connections' consumer side holds (tracemalloc). `--topic` also subscribes every connection to
topic "papers" (every event then arrives twice and is sent once); `--profile` prints cProfile's top functions.
It measures the delivery path alone, so compare runs of it before and after a change on one machine."""

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")
os.environ.setdefault("WS_MAX_CONNECTIONS_PER_USER", "1000000")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("PAPERPIPELINE_VAR_DIR", tempfile.mkdtemp(prefix="fanout-micro-"))


class StubTransport:
    """Stands in for the TCP transport: takes every write and drops it."""

    producer = None
    written = 0

    def registerProducer(self, producer, streaming) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.written += len(data)


class StubProtocol:
    """The parts of Autobahn's WebSocket protocol that the Daphne writer reads."""

    STATE_OPEN = 1
    state = 1
    _perMessageCompress = None
    send_queue = ()

    def __init__(self):
        self.transport = StubTransport()


async def _ignore(message) -> None:
    """The ASGI send of replies: dropped."""


async def build(connections: int, topic: bool, paper_id: str, owner):
    """Connected, authenticated and subscribed consumers; the fan-out never touches Redis."""
    from realtime import fanout as fanout_module
    from realtime import forwarding
    from realtime.consumers import PaperConsumer
    from realtime.delivery import Delivery
    from realtime.snapshots import PaperState
    from realtime.transport.daphne import DaphneWriter

    fan = fanout_module.fanout()
    fan.reader = asyncio.get_running_loop().create_future()  # no reader task: batches are handed in directly

    async def subscribed(*channels) -> None:
        """Redis's SUBSCRIBE, skipped."""

    fan.pubsub.subscribe = subscribed

    async def state(user, paper, since, limit):
        return PaperState(snapshot={"paper_id": paper, "seq": 0}, owner_id=owner.pk)

    forwarding.visible_paper_state = state
    consumers = []
    for _ in range(connections):
        consumer = PaperConsumer()
        consumer.scope = {"type": "websocket", "client": ["127.0.0.1", 1], "path": "/ws/papers"}
        writer = DaphneWriter.attach(StubProtocol())
        writer.bind(_ignore)
        consumer.delivery = Delivery(writer, 1 << 20, consumer._too_slow)
        consumer.base_send = consumer.delivery.send_message
        await consumer.connect()
        await consumer.identity.switch(owner)
        await consumer.on_subscribe({"type": "subscribe", "paper_id": paper_id}, None)
        if topic:
            await consumer.on_subscribe({"type": "subscribe", "topic": "papers"}, None)
        consumers.append(consumer)
    return fan, consumers


def batches(paper_id: str, owner, events: int, batch: int, topic: bool) -> list[list[dict]]:
    """The pub/sub messages the fan-out would read: each event on the paper's group (and the owner's, for the
    topic), as the publisher encodes them."""
    from realtime import bus
    from realtime.broadcast import layer_message, paper_group, user_group
    from realtime.events import ProgressEvent, utc_now

    groups = [paper_group(paper_id)] + ([user_group(owner.pk)] if topic else [])
    messages = []
    for seq in range(1, events + 1):
        payload = ProgressEvent(paper_id=paper_id, progress=0.5, step="bench", step_progress=0.5,
                                estimated_completion=utc_now()).to_dict()
        payload.update(seq=seq, event_id=str(uuid.uuid4()))
        data = bus.encode(layer_message(payload, owner.pk))
        messages.extend({"channel": bus.channel(group).encode(), "data": data} for group in groups)
    per = batch * len(groups)
    return [messages[i:i + per] for i in range(0, len(messages), per)]


async def main(args) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User

    owner = User(pk=1, username="bench", is_active=True)
    paper_id = str(uuid.uuid4())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    fan, consumers = await build(args.connections, args.topic, paper_id, owner)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(f"consumer side per connection: {held / 1024 / args.connections:.2f} KiB (tracemalloc), "
          f"{len(gc.get_objects()) // 1} tracked objects in all")
    if args.top:
        for stat in after.compare_to(before, "lineno")[:args.top]:
            print("   ", stat)

    work = batches(paper_id, owner, args.events, args.batch, args.topic)
    await fan._deliver(work[0])  # warm up: every code path once
    work = work[1:]
    profiler = cProfile.Profile() if args.profile else None
    collections = [g["collections"] for g in gc.get_stats()]
    started = time.process_time()
    if profiler:
        profiler.enable()
    for batch in work:
        await fan._deliver(batch)
    if profiler:
        profiler.disable()
    elapsed = time.process_time() - started
    collections = [g["collections"] - c for g, c in zip(gc.get_stats(), collections, strict=True)]
    deliveries = (args.events - args.batch) * args.connections
    written = sum(c.delivery.writer.protocol.transport.written for c in consumers)
    print(f"{deliveries} deliveries in {elapsed:.3f} s CPU: {1e6 * elapsed / deliveries:.2f} us per delivery; "
          f"gc collections per generation {collections}; {written} bytes written")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1, help="events per fan-out batch")
    parser.add_argument("--topic", action="store_true", help='also subscribe to topic "papers"')
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--top", type=int, default=0, help="show the N biggest allocation sites per line")
    asyncio.run(main(parser.parse_args()))
