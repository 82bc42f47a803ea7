"""Daphne with the project's WebSocket settings: heartbeat interval and timeout, and the inbound size limit.

Run it like daphne itself: `python -m realtime.server -b 127.0.0.1 -p 8000 paperpipeline.asgi:application`.
"""

import os
import sys

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.server import Server


class PaperWebSocketFactory(daphne.server.WebSocketFactory):
    """Daphne's WebSocket factory with the options Daphne does not expose."""

    def setProtocolOptions(self, **options):
        """Send a close frame with its code (1009, ping timeout) instead of only dropping the TCP connection."""
        options.setdefault("failByDrop", False)
        super().setProtocolOptions(**options)


class PaperServer(Server):
    """Daphne's server with the inbound WebSocket message limit taken from settings."""

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        # Autobahn closes a connection that sends more with 1009 (message too big), before the app sees it.
        kwargs["websocket_max_message_size"] = settings.WS_MAX_MESSAGE_BYTES
        kwargs["websocket_max_frame_size"] = settings.WS_MAX_MESSAGE_BYTES
        super().__init__(*args, **kwargs)

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
