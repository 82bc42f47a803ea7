"""Origin check for WebSocket handshakes."""

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    """Reject browser handshakes from foreign origins; allow clients that send no Origin at all.

    Cross-site WebSocket hijacking needs a browser, and browsers always send Origin; scripts usually
    send none and authenticate with a JWT, so refusing them would protect nothing.
    """

    def valid_origin(self, parsed_origin) -> bool:
        """Accept a missing Origin; otherwise it must match an allowed host."""
        return parsed_origin is None or self.validate_origin(parsed_origin)


def origin_validated(application):
    """Wrap an application with the origin check against ALLOWED_HOSTS and WS_ALLOWED_ORIGINS."""
    allowed = [*settings.ALLOWED_HOSTS, *getattr(settings, "WS_ALLOWED_ORIGINS", [])]
    return BrowserOriginValidator(application, allowed)
