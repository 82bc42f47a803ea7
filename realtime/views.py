"""GET /api/asyncapi.json (the AsyncAPI document of /ws/papers), and the server-sent event streams."""

import uuid
from functools import cache
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from papers import selectors

from . import asyncapi, auth, connection, sse
from .protocol import ProtocolError, parse_event_types
from .transport import HTTP_BACKPRESSURE_EXTENSION

document = cache(asyncapi.build)


class AsyncApiDocumentView(APIView):
    """The protocol document; readable by signed-in users, like the OpenAPI document at /api/schema/."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @extend_schema(summary="The AsyncAPI 3 document of the WebSocket /ws/papers", tags=["schema"],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(document())


# --- server-sent events (realtime/sse.py; docs/protocol.md, "Server-sent events") ---


def _error(status: int, code: str, detail: str) -> JsonResponse:
    """The API's one error body."""
    response = JsonResponse({"detail": detail, "code": code}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


async def _stream_user(request: HttpRequest) -> tuple[Any, str | None] | JsonResponse:
    """Who asks: a JWT bearer token (scripts) or the session (browsers: EventSource sends no headers)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "authentication_failed", "Use an Authorization header of the form 'Bearer <token>'.")
        try:
            user, _ = await auth.authenticate_token(token.strip())
        except ProtocolError as exc:
            return _error(401, exc.code, exc.message)
        return user, token.strip()
    user = await request.auser()
    if not user.is_authenticated or not user.is_active:
        return _error(401, "not_authenticated", "Authentication credentials were not provided.")
    return user, None


def _position(request: HttpRequest) -> str | None:
    """Where the client resumes from: Last-Event-ID (an EventSource's reconnect) before `since`."""
    return request.headers.get("Last-Event-ID") or request.GET.get("since") or None


def _event_types(request: HttpRequest) -> frozenset[str] | None:
    """The optional filter, `?event_types=a,b`, checked as the WebSocket checks its list."""
    raw = request.GET.get("event_types")
    return parse_event_types({"event_types": raw.split(",")}) if raw is not None else None


async def _open_stream(request: HttpRequest, paper_id: str | None) -> StreamingHttpResponse | JsonResponse:
    """Check who asks, what for and from where, then stream; every refusal is an API error before any event."""
    if request.method != "GET":
        return _error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
    who = await _stream_user(request)
    if isinstance(who, JsonResponse):
        return who
    user, token = who
    try:
        event_types = _event_types(request)
        position = _position(request)
        if paper_id is not None:
            since = sse.parse_seq(position) if position is not None else None
            cursors = None
        else:
            since, cursors = None, sse.parse_cursors(position or "")
    except ProtocolError as exc:
        return _error(400, "invalid", exc.message)
    except sse.InvalidPosition as exc:
        return _error(400, "invalid_since", f"Last-Event-ID or since: {exc}")
    if paper_id is not None and await _paper_visible(user, paper_id) is None:
        return _error(404, "not_found", "No such paper.")
    if connection.clients.count(user.pk) >= settings.WS_MAX_CONNECTIONS_PER_USER:
        return _error(429, "too_many_connections",
                      f"At most {settings.WS_MAX_CONNECTIONS_PER_USER} connections per user.")
    watch = request.scope.get("extensions", {}).get(HTTP_BACKPRESSURE_EXTENSION)
    stream = sse.EventStream(
        user=user, address=request.META.get("REMOTE_ADDR"), token=token,
        session_key=None if token else request.session.session_key, paper_id=paper_id, since=since,
        cursors=cursors, event_types=event_types, system=request.GET.get("system") in ("1", "true"), watch=watch,
    )
    response = StreamingHttpResponse(stream.body(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


_paper_visible = database_sync_to_async(lambda user, paper_id: selectors.paper_state_get(user=user, paper_id=paper_id))


async def paper_stream(request: HttpRequest, paper_id: uuid.UUID) -> StreamingHttpResponse | JsonResponse:
    """GET /api/papers/{id}/stream/: one paper's events as server-sent events, `id:` = seq."""
    return await _open_stream(request, str(paper_id))


async def papers_stream(request: HttpRequest) -> StreamingHttpResponse | JsonResponse:
    """GET /api/papers/stream/: events of every paper the user may see (`?system=1`: and system_status)."""
    return await _open_stream(request, None)
