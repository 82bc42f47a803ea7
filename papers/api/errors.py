"""The API's one error body: {"detail": message, "code": stable code}, plus "fields" when fields were refused.

Every error of the API has it — DRF's own (401, 403, 404, 405, 415, 429, serializer validation), SimpleJWT's,
and the services' refusals — and so does the server's 413 (realtime/transport/daphne.py)."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD_KEYS = ("non_field_errors", "detail")


class Conflict(exceptions.APIException):
    """409: the request is valid but the resource's state refuses it (say, cancelling a finished paper)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the resource's current state."
    default_code = "conflict"


def error_body(detail: str, code: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The one error body shape."""
    body: dict[str, Any] = {"detail": str(detail), "code": str(code)}
    if fields:
        body["fields"] = fields
    return body


def error_response(detail: str, code: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """A Response with the one error body, for the rare view that answers an error without raising."""
    return Response(error_body(detail, code), status=status_code, headers=headers)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, headers such as Retry-After and WWW-Authenticate), with the one body shape."""
    if isinstance(exc, DjangoValidationError):  # a service's refusal no view translated: a bad request
        exc = exceptions.ValidationError(exc.messages[0], code=exc.code or "invalid")
    elif isinstance(exc, Http404):  # as DRF's handler does, but before it, so the body is built from the result
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _body_of(exc)
    return response


def _body_of(exc: exceptions.APIException) -> dict[str, Any]:
    """The body for one APIException, whatever the form of its detail (a message, a list or a dict)."""
    detail = exc.detail
    if isinstance(detail, dict):
        if "detail" in detail:  # SimpleJWT: {"detail": ..., "code": ..., "messages": [...]}
            message = detail["detail"]
            return error_body(message, detail.get("code") or getattr(message, "code", None) or exc.default_code)
        fields = {name: _messages(value) for name, value in detail.items() if name not in NON_FIELD_KEYS}
        general = [m for key in NON_FIELD_KEYS for m in _flat(detail.get(key, []))]
        first = general[0] if general else next(m for value in detail.values() for m in _flat(value))
        return error_body(first, getattr(first, "code", None) or exc.default_code, fields)
    if isinstance(detail, list):
        first = next(iter(_flat(detail)), exc.default_detail)
        return error_body(first, getattr(first, "code", None) or exc.default_code)
    return error_body(detail, getattr(detail, "code", None) or exc.default_code)


def _flat(value: Any) -> list[Any]:
    """Every message in a (possibly nested) error detail, in order."""
    if isinstance(value, dict):
        return [m for item in value.values() for m in _flat(item)]
    if isinstance(value, list):
        return [m for item in value for m in _flat(item)]
    return [value]


def _messages(value: Any) -> list[str]:
    """A field's messages as plain strings."""
    return [str(m) for m in _flat(value)]
