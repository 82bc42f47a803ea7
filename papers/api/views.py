"""REST API for papers: upload, list, detail, the file, extracted data, event log, reprocess and cancel."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors, services
from ..models import Paper
from ..views import paper_file_response
from .errors import Conflict
from .serializers import (
    EntitySerializer,
    ErrorSerializer,
    PaperEventPageSerializer,
    PaperEventSerializer,
    PaperSerializer,
    PaperUploadSerializer,
    RelationshipSerializer,
)

EVENT_PAGE_LIMIT = 1000
MAX_SEQ = 2**63 - 1  # the database's bigint


def _as_api_error(exc: DjangoValidationError, field: str) -> ValidationError:
    """Turn a service's ValidationError into a 400 naming the field, with the service's stable code."""
    return ValidationError({field: [exc.messages[0]]}, code=exc.code or "invalid")


ERROR_MEANINGS = {
    400: "A refused field or value: `fields` names it.",
    401: "Not authenticated: no, an invalid or an expired token or session.",
    404: "No such paper, or one the user may not see.",
    409: "The paper's state refuses the action (`already_active`, `not_active`).",
    413: "The body is over HTTP_MAX_BODY_BYTES (`request_too_large`).",
    429: "Locked out after failed logins (`locked_out`, with Retry-After).",
}


def errors(*status_codes: int) -> dict[int, OpenApiResponse]:
    """The documented error responses of an operation, all in the one error body."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_MEANINGS[code]) for code in status_codes}


class FirstRenderer(BaseContentNegotiation):
    """Ignore Accept: a download answers with the file whatever the client accepts, and errors in JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PaperVisible(permissions.BasePermission):
    """Object-level form of the access rule the queryset already applies (papers.selectors.paper_visible_to)."""

    def has_object_permission(self, request: Request, view, obj: Paper) -> bool:
        return selectors.paper_visible_to(request.user, obj.owner_id)


@extend_schema_view(
    list=extend_schema(summary="List papers", responses={200: PaperSerializer(many=True), **errors(401)}),
    retrieve=extend_schema(summary="Get a paper", responses={200: PaperSerializer, **errors(401, 404)}),
    destroy=extend_schema(summary="Delete a paper and its file", responses={204: None, **errors(401, 404)}),
)
class PaperViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Papers of the requesting user (all papers for staff)."""

    serializer_class = PaperSerializer
    permission_classes = [permissions.IsAuthenticated, PaperVisible]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        """Only papers the user may see; others are 404, the same as missing."""
        return selectors.paper_list_visible(user=self.request.user)

    @extend_schema(
        summary="Upload a paper",
        request={"multipart/form-data": PaperUploadSerializer},
        responses={201: PaperSerializer, **errors(400, 401, 413)},
    )
    def create(self, request: Request) -> Response:
        """Upload a paper (multipart: file, optional title) and queue it."""
        upload = PaperUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            paper = services.paper_create(
                owner=request.user, file=upload.validated_data["file"], title=upload.validated_data["title"]
            )
        except DjangoValidationError as exc:
            raise _as_api_error(exc, "file") from exc
        return Response(PaperSerializer(paper).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Paper) -> None:
        """Delete through the service; the file goes once the deletion commits."""
        services.paper_delete(paper=instance)

    @extend_schema(
        summary="Download the paper's file",
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            (200, "text/plain"): OpenApiTypes.BINARY,
            **errors(401, 404),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer], content_negotiation_class=FirstRenderer)
    def file(self, request: Request, pk=None) -> FileResponse:
        """The uploaded file, as an attachment of a safe type (application/pdf or text/plain)."""
        return paper_file_response(self.get_object())

    @extend_schema(
        summary="List the paper's entities", responses={200: EntitySerializer(many=True), **errors(401, 404)}
    )
    @action(detail=True, methods=["get"], pagination_class=None)  # every entity at once: the schema says so too
    def entities(self, request: Request, pk=None) -> Response:
        """Entities extracted from the paper."""
        return Response(EntitySerializer(selectors.entity_list(paper=self.get_object()), many=True).data)

    @extend_schema(
        summary="List the paper's relationships",
        responses={200: RelationshipSerializer(many=True), **errors(401, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def relationships(self, request: Request, pk=None) -> Response:
        """Relationships extracted from the paper."""
        return Response(RelationshipSerializer(selectors.relationship_list(paper=self.get_object()), many=True).data)

    @extend_schema(
        summary="Page the paper's event log",
        parameters=[OpenApiParameter("since", int, description="Events after this seq (default 0).", required=False)],
        responses={200: PaperEventPageSerializer, **errors(400, 401, 404)},
    )
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk=None) -> Response:
        """The paper's event log after ?since=SEQ (default 0), oldest first, at most 1000 per page."""
        paper = self.get_object()
        since = request.query_params.get("since", "0")
        if not (since.isascii() and since.isdigit()) or int(since) > MAX_SEQ:
            raise ValidationError({"since": ["Must be a non-negative integer seq."]}, code="invalid_since")
        events = list(selectors.paper_events_since(paper_id=paper.pk, since=int(since), limit=EVENT_PAGE_LIMIT + 1))
        more = len(events) > EVENT_PAGE_LIMIT
        events = events[:EVENT_PAGE_LIMIT]
        return Response(
            {
                "paper_id": str(paper.pk),
                "since": int(since),
                "last_seq": selectors.paper_last_seq(paper_id=paper.pk),
                "first_available_seq": selectors.paper_first_seq(paper_id=paper.pk),
                "has_more": more,
                "events": PaperEventSerializer(events, many=True).data,
            }
        )

    @extend_schema(summary="Reprocess a paper", request=None, responses={200: PaperSerializer, **errors(401, 404, 409)})
    @action(detail=True, methods=["post"])
    def reprocess(self, request: Request, pk=None) -> Response:
        """Queue a finished, failed or cancelled paper again."""
        return self._lifecycle(services.paper_reprocess)

    @extend_schema(summary="Cancel a paper", request=None, responses={200: PaperSerializer, **errors(401, 404, 409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Cancel a queued or processing paper."""
        return self._lifecycle(services.paper_cancel)

    def _lifecycle(self, service) -> Response:
        """Apply a lifecycle service; a refusal from the paper's state is a 409 with the service's code."""
        try:
            paper = service(paper=self.get_object())
        except DjangoValidationError as exc:
            raise Conflict(exc.messages[0], code=exc.code or Conflict.default_code) from exc
        return Response(PaperSerializer(get_object_or_404(Paper, pk=paper.pk)).data)
