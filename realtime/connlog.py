"""The log lines and metrics of a WebSocket connection's life (docs/operations.md, "Logs" and "Metrics").

A connection's id and, once known, its user's id are bound to the connection's own task context, so every line
logged while handling that connection carries them, the errors of the modules it calls included. Nothing here
logs what a client sent: a token or a password never reaches a log line.
"""

import logging
import secrets
from typing import Any

import structlog

from paperpipeline import metrics

from .protocol import (
    CLOSE_ACCESS_REVOKED,
    CLOSE_AUTHENTICATION_EXPIRED,
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_AUTHENTICATION_TIMEOUT,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN_LATER,
)

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


# Errors that mean a limit refused a message or a connection (docs/protocol.md, "Limits").
LIMIT_ERRORS = frozenset({"rate_limited", "too_many_subscriptions", "too_many_connections",
                          "too_many_unauthenticated", "server_busy"})
# Close codes counted by their number; any other code a peer sends is counted as "other", so a client cannot make
# the metric grow a series per code it invents.
KNOWN_CLOSE_CODES = frozenset({
    *range(1000, 1016), CLOSE_AUTHENTICATION_FAILED, CLOSE_AUTHENTICATION_EXPIRED, CLOSE_AUTHENTICATION_TIMEOUT,
    CLOSE_ACCESS_REVOKED, CLOSE_RATE_LIMITED, CLOSE_TOO_MANY_CONNECTIONS, CLOSE_TOO_SLOW, CLOSE_TRY_AGAIN_LATER,
})


for _limit in LIMIT_ERRORS:
    metrics.WS_RATE_LIMIT_HITS.labels(_limit)  # every limit's series exists from the start, at 0


def error(code: str, close: int | None) -> None:
    """The server answered with an error (with the close code it closes with, if any)."""
    level = logging.WARNING if close is not None else logging.INFO
    logger.log(level, "ws.error", extra={"code": code, "close_code": close})
    metrics.WS_ERRORS.labels(code).inc()
    if code in LIMIT_ERRORS:
        metrics.WS_RATE_LIMIT_HITS.labels(code).inc()


def closed(code: int | None, reason: str | None) -> None:
    """The connection ended: its close code and, when the server closed it, the error code why (None: the client
    or the network ended it)."""
    logger.info("ws.close", extra={"close_code": code, "reason": reason})
    # By the reason too: a client too slow to read the server's 4011 close frame ends with 1006 all the same.
    metrics.WS_CLOSES.labels(close_code_label(code), reason or "none").inc()


def close_code_label(code: int | None) -> str:
    """A close code as the closes metric counts it: its number when known, else "other" (or "none")."""
    if code is None:
        return "none"
    return str(code) if code in KNOWN_CLOSE_CODES else "other"


access_logger = logging.getLogger("realtime.access")
_PROBES = ("/healthz", "/readyz")


def server_action(protocol: str, action: str, details: dict[str, Any]) -> None:
    """The server's access log as records (LOG_FORMAT=json): each HTTP request, and each refused WebSocket
    handshake; a WebSocket's own life is logged by its consumer. The query string is left out."""
    path = str(details.get("path", "")).split("?", 1)[0]
    if protocol == "http" and action == "complete":
        # A load balancer probes every few seconds, Prometheus scrapes every few more.
        quiet = path in _PROBES or (path == "/metrics" and details.get("status") == 200)
        level = logging.DEBUG if quiet else logging.INFO
        access_logger.log(level, "http.request", extra={
            "method": details.get("method"), "path": path, "status": details.get("status"),
            "bytes": details.get("size"), "duration_ms": round((details.get("time_taken") or 0) * 1000, 1),
            "client": details.get("client"),
        })
    elif protocol == "websocket" and action == "rejected":
        access_logger.info("ws.rejected", extra={"path": path, "client": details.get("client")})


def stream_opened(address: str | None, target: dict[str, Any], since: Any) -> None:
    """A server-sent event stream started (realtime/sse.py): bind its id (for its own task) and log what it follows."""
    structlog.contextvars.bind_contextvars(connection_id=secrets.token_hex(8))
    logger.info("sse.connect", extra={"client": address, **{key: str(value) for key, value in target.items()},
                                      "since": since})


def stream_closed(reason: str | None) -> None:
    """A stream ended: the error code it ended with, or None when the client went away."""
    logger.info("sse.close", extra={"reason": reason})
