"""The log lines of a WebSocket connection's life (docs/operations.md, "Logs").

A connection's id and, once known, its user's id are bound to the connection's own task context, so every line
logged while handling that connection carries them, the errors of the modules it calls included. Nothing here
logs what a client sent: a token or a password never reaches a log line.
"""

import logging
import secrets
from typing import Any

import structlog

logger = logging.getLogger("realtime.connection")


def opened(address: str | None) -> str:
    """A connection was accepted: give it an id (bound for the rest of its task) and log it."""
    connection_id = secrets.token_hex(8)
    structlog.contextvars.bind_contextvars(connection_id=connection_id)
    logger.info("ws.connect", extra={"client": address})
    return connection_id


def authenticated(user: Any, method: str) -> None:
    """The connection acts for a user from now on (method: "token" or "session")."""
    structlog.contextvars.bind_contextvars(user_id=user.pk)
    logger.info("ws.authenticated", extra={"method": method})


def subscribed(target: dict[str, Any], *, since: int | None = None) -> None:
    """A subscription was added (a paper or a topic)."""
    logger.info("ws.subscribed", extra={**{key: str(value) for key, value in target.items()}, "since": since})


def unsubscribed(target: dict[str, Any]) -> None:
    """A subscription was dropped."""
    logger.info("ws.unsubscribed", extra={key: str(value) for key, value in target.items()})


def error(code: str, close: int | None) -> None:
    """The server answered with an error (with the close code it closes with, if any)."""
    level = logging.WARNING if close is not None else logging.INFO
    logger.log(level, "ws.error", extra={"code": code, "close_code": close})


def closed(code: int | None, reason: str | None) -> None:
    """The connection ended: its close code and, when the server closed it, the error code why (None: the client
    or the network ended it)."""
    logger.info("ws.close", extra={"close_code": code, "reason": reason})


access_logger = logging.getLogger("realtime.access")
_PROBES = ("/healthz", "/readyz")


def server_action(protocol: str, action: str, details: dict[str, Any]) -> None:
    """The server's access log as records (LOG_FORMAT=json): each HTTP request, and each refused WebSocket
    handshake; a WebSocket's own life is logged by its consumer. The query string is left out."""
    path = str(details.get("path", "")).split("?", 1)[0]
    if protocol == "http" and action == "complete":
        level = logging.DEBUG if path in _PROBES else logging.INFO  # a load balancer probes every few seconds
        access_logger.log(level, "http.request", extra={
            "method": details.get("method"), "path": path, "status": details.get("status"),
            "bytes": details.get("size"), "duration_ms": round((details.get("time_taken") or 0) * 1000, 1),
            "client": details.get("client"),
        })
    elif protocol == "websocket" and action == "rejected":
        access_logger.info("ws.rejected", extra={"path": path, "client": details.get("client")})
