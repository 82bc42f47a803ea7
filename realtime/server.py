"""Daphne with the project's WebSocket settings: heartbeat, inbound size limit, write backpressure.

Run it like daphne itself: `python -m realtime.server -b 127.0.0.1 -p 8000 paperpipeline.asgi:application`.
"""

import asyncio
import os
import sys

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.server import Server


class PaperWebSocketFactory(daphne.server.WebSocketFactory):
    """Daphne's WebSocket factory with the options Daphne does not expose."""

    def setProtocolOptions(self, **options):
        """Send a close frame with its code (1009, 4011, ping timeout) and give the peer time to read it."""
        options.setdefault("failByDrop", False)
        options.setdefault("closeHandshakeTimeout", 5)
        super().setProtocolOptions(**options)


FLOW_EXTENSION = "paperpipeline.flow"


class TransportFlow:
    """Write-side backpressure of one WebSocket, as a Twisted streaming producer: Twisted pauses it while the
    socket's write buffer is over its high-water mark (64 KiB) and resumes it once the buffer drained."""

    def __init__(self, forward=None):
        self.forward = forward  # the producer registered before (Daphne's upgraded HTTP channel), kept informed
        self.paused = False
        self.resumed = asyncio.Event()
        self.resumed.set()

    @classmethod
    def attach(cls, transport) -> "TransportFlow":
        """Register as the transport's producer, taking over (and forwarding to) the one already there."""
        previous = transport.producer
        if previous is not None:
            transport.unregisterProducer()
        flow = cls(forward=previous)
        transport.registerProducer(flow, True)
        return flow

    def pauseProducing(self) -> None:
        self.paused = True
        self.resumed.clear()
        if self.forward is not None:
            self.forward.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        self.resumed.set()
        if self.forward is not None:
            self.forward.resumeProducing()

    def stopProducing(self) -> None:
        self.paused = False
        self.resumed.set()
        if self.forward is not None:
            self.forward.stopProducing()


class PaperServer(Server):
    """Daphne's server with the inbound WebSocket message limit taken from settings."""

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        # Autobahn closes a connection that sends more with 1009 (message too big), before the app sees it.
        kwargs["websocket_max_message_size"] = settings.WS_MAX_MESSAGE_BYTES
        kwargs["websocket_max_frame_size"] = settings.WS_MAX_MESSAGE_BYTES
        super().__init__(*args, **kwargs)

    def create_application(self, protocol, scope):
        """Give each WebSocket application its connection's flow state (ASGI scope extension)."""
        if scope["type"] == "websocket":
            flow = TransportFlow.attach(protocol.transport)
            scope["extensions"] = {**scope.get("extensions", {}), FLOW_EXTENSION: flow}
        return super().create_application(protocol, scope)

    def run(self):
        """Run Daphne with this project's factory (Server.run builds it from the module global)."""
        daphne.server.WebSocketFactory = PaperWebSocketFactory
        super().run()


def main(argv: list[str] | None = None) -> None:
    """Start Daphne with ping interval and timeout from settings unless the command line sets them."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperpipeline.settings")
    import django

    django.setup()
    from django.conf import settings

    args = list(sys.argv[1:] if argv is None else argv)
    defaults = ["--ping-interval", str(settings.WS_PING_INTERVAL), "--ping-timeout", str(settings.WS_PING_TIMEOUT)]
    cli = CommandLineInterface()
    cli.server_class = PaperServer
    cli.run(defaults + args)


if __name__ == "__main__":
    main()
