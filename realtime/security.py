"""Origin check and session authentication for WebSocket handshakes."""

from importlib import import_module
from urllib.parse import urlsplit

from channels.auth import get_user
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) origin with its default port filled in; None if it is not one."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:  # a port out of range or not a number, a malformed IPv6 host
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _headers(scope, name: bytes) -> list[str]:
    return [value.decode("latin1") for key, value in scope.get("headers", []) if key == name]


def _secure(scope) -> bool:
    """Whether the browser reached the site over TLS: the server says so, or the proxy Django trusts does."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy_header:
        return False
    name, secure_value = proxy_header
    values = _headers(scope, name.removeprefix("HTTP_").lower().replace("_", "-").encode())
    return len(values) == 1 and values[0].split(",", 1)[0].strip() == secure_value


def own_origin(scope) -> tuple[str, str, int] | None:
    """The site's origin as the handshake addressed it: its scheme and Host header, the host an allowed one."""
    hosts = _headers(scope, b"host")
    if len(hosts) != 1:
        return None
    domain, _ = split_domain_port(hosts[0])
    allowed_hosts = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    return parse_origin(f"{'https' if _secure(scope) else 'http'}://{hosts[0]}")


class BrowserOriginValidator:
    """Let a browser open the socket only from the site's own origin or a configured one; allow clients that
    send no Origin at all.

    Same origin means scheme, host and port all equal: a page on another port of the same host is another site.
    Cross-site WebSocket hijacking needs a browser, and browsers always send Origin; scripts usually send none
    and authenticate with a JWT, so refusing them would protect nothing.
    """

    def __init__(self, application, allowed_origins: list[str]):
        self.application = application
        self.allowed_origins = set()
        for origin in allowed_origins:
            parsed = parse_origin(origin)
            if parsed is None:
                raise ImproperlyConfigured(
                    f"WS_ALLOWED_ORIGINS: {origin!r} is not an origin like https://app.example.com or http://host:8080."
                )
            self.allowed_origins.add(parsed)

    # A plain call returning the application's coroutine (an ASGI single callable all the same): awaiting it here
    # would keep one more coroutine frame alive for each connection's life.
    _asgi_single_callable = True

    def __call__(self, scope, receive, send):
        """Pass the handshake on, or deny it (HTTP 403) when its Origin is foreign."""
        origins = _headers(scope, b"origin")
        if not origins or (len(origins) == 1 and self.allowed(origins[0], scope)):
            return self.application(scope, receive, send)
        return WebsocketDenier()(scope, receive, send)

    def allowed(self, origin: str, scope) -> bool:
        """Whether a page on this origin may open the socket: the site's own origin or a configured one."""
        parsed = parse_origin(origin)
        return parsed is not None and (parsed in self.allowed_origins or parsed == own_origin(scope))


def origin_validated(application):
    """Wrap an application with the same-origin check, plus the full origins of WS_ALLOWED_ORIGINS."""
    return BrowserOriginValidator(application, getattr(settings, "WS_ALLOWED_ORIGINS", []))


class SessionAuthentication:
    """The Django session named by the handshake's cookie, and its user, in the scope (`session`, `user`): what
    Channels' AuthMiddlewareStack does, in one layer. That stack is three (cookies, session, user), each keeping
    a copy of the scope and a coroutine frame for the connection's whole life (~3 KiB per idle connection), and
    wraps send for session saves that only an HTTP response makes. Without a session cookie the user is anonymous
    with no database round trip: the scripts that authenticate with a JWT, and every reconnect storm of them."""

    def __init__(self, application):
        self.application = application
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        """Pass the handshake on with the session and its user (anonymous when there is none) in the scope."""
        session = self.session_store(_session_key(scope))  # an invalid key leaves session_key None
        scope = {**scope, "session": session}
        # Channels' get_user: the session's user if its backend and auth hash still hold, else anonymous.
        scope["user"] = AnonymousUser() if session.session_key is None else await get_user(scope)
        return await self.application(scope, receive, send)


def _session_key(scope) -> str | None:
    """The session cookie's value in the handshake's Cookie header, if any."""
    for value in _headers(scope, b"cookie"):
        key = parse_cookie(value).get(settings.SESSION_COOKIE_NAME)
        if key is not None:
            return key
    return None


def session_authenticated(application):
    """The Django session and its user in the scope, as channels.auth.AuthMiddlewareStack puts them there."""
    return SessionAuthentication(application)
