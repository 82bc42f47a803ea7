"""API representations of papers, their extracted data and events."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Entity, Paper, PaperEvent, Relationship

# The wire events' JSON Schemas live with the WebSocket protocol (realtime.schemas); the OpenAPI document gets them
# as this component from realtime.openapi's postprocessing hook, so both documents describe one payload.
PAPER_EVENT_COMPONENT = {"$ref": "#/components/schemas/PaperEvent"}


class PaperSerializer(serializers.ModelSerializer):
    """A paper and where its processing stands."""

    owner = serializers.CharField(source="owner.get_username", read_only=True)
    step = serializers.CharField(source="current_step", read_only=True)

    class Meta:
        model = Paper
        fields = [
            "id", "title", "owner", "original_filename", "content_type", "size_bytes", "status", "progress",
            "step", "step_progress", "estimated_completion", "error_code", "error_message", "task_id",
            "created_at", "updated_at", "started_at", "completed_at",
        ]
        read_only_fields = fields


class PaperUploadSerializer(serializers.Serializer):
    """A multipart upload: the file and an optional title."""

    file = serializers.FileField()
    title = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class EntitySerializer(serializers.ModelSerializer):
    """An extracted entity, with how central it is to the paper (as its entity_extracted event says)."""

    class Meta:
        model = Entity
        fields = ["id", "entity_type", "name", "confidence", "mentions", "salience", "key", "signals", "created_at"]
        read_only_fields = fields


class RelationshipSerializer(serializers.ModelSerializer):
    """An extracted relationship, with both entities' names for readability."""

    source_name = serializers.CharField(source="source.name", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True)
    # A result's metric and score; null when it has none, as in its relationship_extracted event.
    metric_name = serializers.CharField(source="metric.name", read_only=True, default=None, allow_null=True)
    score = serializers.SerializerMethodField()

    class Meta:
        model = Relationship
        fields = [
            "id", "relationship_type", "source_id", "source_name", "target_id", "target_name", "confidence",
            "evidence", "metric_id", "metric_name", "score", "created_at",
        ]
        read_only_fields = fields

    def get_score(self, link: Relationship) -> str | None:
        """The score as written, or null."""
        return link.score or None


@extend_schema_field(PAPER_EVENT_COMPONENT)
class PaperEventSerializer(serializers.ModelSerializer):
    """A logged event: exactly the payload that was sent over the WebSocket."""

    def to_representation(self, instance: PaperEvent) -> dict:
        """Return the stored wire payload unchanged."""
        return instance.payload

    class Meta:
        model = PaperEvent
        fields = ["payload"]


class PaperEventPageSerializer(serializers.Serializer):
    """A page of a paper's event log (GET /api/papers/{id}/events/?since=SEQ)."""

    paper_id = serializers.UUIDField()
    since = serializers.IntegerField(min_value=0)
    last_seq = serializers.IntegerField(min_value=0, help_text="The seq of the paper's newest event (0: none).")
    first_available_seq = serializers.IntegerField(
        min_value=0, allow_null=True, help_text="The oldest seq still kept; null when the log is empty."
    )
    has_more = serializers.BooleanField(help_text="More events follow: ask again with since = the last seq here.")
    events = PaperEventSerializer(many=True)


class TokenPairSerializer(serializers.Serializer):
    """A new access token and refresh token (SimpleJWT)."""

    access = serializers.CharField()
    refresh = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API (papers.api.errors)."""

    detail = serializers.CharField(help_text="A readable message.")
    code = serializers.CharField(help_text="A stable machine-readable code (docs/protocol.md, \"HTTP\").")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only when request fields were refused: each one's messages.",
    )
