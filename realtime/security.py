"""Origin check and session authentication for WebSocket handshakes."""

from channels.auth import AuthMiddleware
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


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


class SessionUserMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, minus its database round trip when the handshake carries no session: the
    scripts that authenticate with a JWT, and every reconnect storm of them, skip it."""

    async def resolve_scope(self, scope) -> None:
        """Anonymous without a session key; otherwise the session's user, as AuthMiddleware finds it."""
        if scope["session"].session_key is None:
            scope["user"]._wrapped = AnonymousUser()
        else:
            await super().resolve_scope(scope)


def session_authenticated(application):
    """Cookies, the Django session and its user in the scope, as channels.auth.AuthMiddlewareStack."""
    return CookieMiddleware(SessionMiddleware(SessionUserMiddleware(application)))
