"""ASGI app of the naive baseline: a minimal consumer, as most tutorials write it."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class NaiveConsumer(AsyncJsonWebsocketConsumer):
    """Joins the one group on connect and JSON-encodes each event for each client."""

    async def connect(self):
        await self.channel_layer.group_add("paper", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("paper", self.channel_name)

    async def paper_event(self, message):
        await self.send_json(message["event"])


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/papers", NaiveConsumer.as_asgi())])})
