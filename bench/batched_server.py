"""The real ceiling: a raw `websockets` server that frames each event once and writes batches.

Like raw_server.py it reads the Redis pub/sub channel "bench:paper" and takes clients with no authenticate or
subscribe message. Unlike websockets.broadcast (one frame built and one write per socket per event), it builds
each event's text frame once, queues the frames the pub/sub reader has ready, and when the reader waits for
more, writes the whole queue to each open socket in one transport.write: the least work per delivery a Python
asyncio server can do."""

import asyncio
import os
import struct
import sys

import redis.asyncio as redis
from websockets.asyncio.server import serve
from websockets.protocol import State

CLIENTS = set()
PENDING: list[bytes] = []  # frames read from Redis, not yet written


async def handler(ws):
    CLIENTS.add(ws)
    try:
        await ws.wait_closed()
    finally:
        CLIENTS.discard(ws)


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame, as a server sends it (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def flush() -> None:
    """Every queued frame to every open socket, one write each."""
    batch = b"".join(PENDING)
    PENDING.clear()
    for ws in CLIENTS:
        # Whole frames only, so they never split one websockets writes itself (a ping, a close).
        if ws.state is State.OPEN:
            ws.transport.write(batch)


async def relay(url: str):
    loop = asyncio.get_running_loop()
    pubsub = redis.Redis.from_url(url).pubsub()
    await pubsub.subscribe("bench:paper")
    async for message in pubsub.listen():
        if message["type"] == "message":
            PENDING.append(text_frame(message["data"]))
            # The reader runs on without yielding while Redis data is buffered: flush runs once it waits.
            if len(PENDING) == 1:
                loop.call_soon(flush)


async def main(port: int):
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        await relay(os.environ["REDIS_URL"])


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
