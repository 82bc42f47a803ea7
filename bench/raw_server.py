"""The practical Python ceiling: a raw `websockets` server fed by one Redis pub/sub subscription,
fanning each message out with websockets.broadcast (encoded once, written to every socket)."""

import asyncio
import os
import sys

import redis.asyncio as redis
from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(ws):
    CLIENTS.add(ws)
    try:
        await ws.wait_closed()
    finally:
        CLIENTS.discard(ws)


async def relay(url: str):
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe("bench:paper")
    async for message in pubsub.listen():
        if message["type"] == "message":
            broadcast(CLIENTS, message["data"].decode())


async def main(port: int):
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        await relay(os.environ["REDIS_URL"])


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
