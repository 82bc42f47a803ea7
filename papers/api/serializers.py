"""API representations of papers, their extracted data and events."""

from rest_framework import serializers

from ..models import Entity, Paper, PaperEvent, Relationship


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
    metric_name = serializers.CharField(source="metric.name", read_only=True, default=None)
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


class PaperEventSerializer(serializers.ModelSerializer):
    """A logged event: exactly the payload that was sent over the WebSocket."""

    def to_representation(self, instance: PaperEvent) -> dict:
        """Return the stored wire payload unchanged."""
        return instance.payload

    class Meta:
        model = PaperEvent
        fields = ["payload"]
