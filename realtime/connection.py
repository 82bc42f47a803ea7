"""Connection management, as the specification names it: the registry of the connections open in this process.

A reader of the specification starts here; each concern of a connection lives in a module of its own:
- client tracking: `ClientRegistry` below (`clients`, this process's registry);
- authentication: `realtime.auth` (JWT check, the authentication clock) and `realtime.security` (session, origin);
- the client protocol: `realtime.protocol` (messages, errors, close codes); limits: `realtime.limits`;
- subscriptions: `realtime.subscriptions` (what a connection asked for) and `realtime.snapshots` (what it starts with);
- broadcasting: `realtime.broadcast` (what goes where), `realtime.bus` (Redis), `realtime.fanout` (one reader per
  process), `realtime.forwarding` (what one connection forwards), `realtime.delivery` (what a socket is sent, and
  when), `realtime.transport` (the server's writer); control messages: `realtime.control`;
- the consumer that ties them together: `realtime.consumers.PaperConsumer`.
"""

from typing import Any

from paperpipeline import metrics


class _ConnectionIndex:
    """Connections by key, counted per key and in all in constant time (checked on every connect of a flood); the
    total is also the process's share of a metric."""

    def __init__(self, gauge):
        self._by_key: dict[Any, set[Any]] = {}
        self._total = 0
        self._gauge = gauge

    def add(self, key: Any, connection: Any) -> None:
        connections = self._by_key.setdefault(key, set())
        if connection not in connections:
            connections.add(connection)
            self._total += 1
            self._gauge.set(self._total)

    def remove(self, key: Any, connection: Any) -> None:
        connections = self._by_key.get(key)
        if connections is not None and connection in connections:
            connections.discard(connection)
            self._total -= 1
            self._gauge.set(self._total)
            if not connections:
                del self._by_key[key]

    def count(self, key: Any = ...) -> int:
        return self._total if key is ... else len(self._by_key.get(key, ()))

    def of(self, key: Any) -> set[Any]:
        return set(self._by_key.get(key, ()))


class ClientRegistry:
    """Connections open in this process: authenticated ones by user (for counts, limits and closing a user's
    sockets), unauthenticated ones by client address (so a flood of them is capped)."""

    def __init__(self):
        self._by_user = _ConnectionIndex(metrics.WS_CONNECTIONS.labels("authenticated"))
        self._unauthenticated = _ConnectionIndex(metrics.WS_CONNECTIONS.labels("unauthenticated"))

    def add(self, user_id: Any, connection: Any) -> None:
        """Track a connection as belonging to a user."""
        self._by_user.add(user_id, connection)

    def remove(self, user_id: Any, connection: Any) -> None:
        """Stop tracking a connection."""
        self._by_user.remove(user_id, connection)

    def count(self, user_id: Any = ...) -> int:
        """Connections of one user, or of everyone when no user is given."""
        return self._by_user.count(user_id)

    def of_user(self, user_id: Any) -> set[Any]:
        """The connections of one user."""
        return self._by_user.of(user_id)

    def add_unauthenticated(self, address: Any, connection: Any) -> None:
        """Track a connection that has not authenticated yet (realtime.limits caps them)."""
        self._unauthenticated.add(address, connection)

    def release_unauthenticated(self, address: Any, connection: Any) -> None:
        """Stop counting a connection as unauthenticated: it authenticated or closed."""
        self._unauthenticated.remove(address, connection)

    def count_unauthenticated(self, address: Any = ...) -> int:
        """Unauthenticated connections from one address, or from everyone when no address is given."""
        return self._unauthenticated.count(address)


clients = ClientRegistry()
