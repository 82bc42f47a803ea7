"""App config of realtime."""

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Events, broadcasting and the WebSocket endpoint."""

    name = "realtime"

    def ready(self) -> None:
        """Connect signals once."""
        from . import signals

        signals.connect()
