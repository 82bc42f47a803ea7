"""Admin for papers: status, progress and step at a glance; reprocess and cancel broadcast like any change."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.html import format_html

from . import display, selectors, services
from .models import Entity, Paper, PaperEvent, PaperStatus, Relationship


class ExtractedInline(admin.TabularInline):
    """Extracted data is the pipeline's to write: shown, never added or edited by hand."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class EntityInline(ExtractedInline):
    model = Entity
    fields = readonly_fields = ["entity_type", "name", "confidence", "mentions", "salience", "key"]


class RelationshipInline(ExtractedInline):
    model = Relationship
    fields = readonly_fields = ["relationship_type", "source", "target", "confidence", "metric", "score", "evidence"]

    def get_queryset(self, request):
        """With the entities each row names, read in the same query."""
        return super().get_queryset(request).select_related("source", "target", "metric")


class PaperAdminForm(forms.ModelForm):
    """Validates a newly chosen file with the same rules as the API."""

    class Meta:
        model = Paper
        fields = ["title", "owner", "file"]

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if isinstance(upload, UploadedFile):
            services.paper_file_validate(file=upload)
        return upload


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    form = PaperAdminForm
    list_display = ["__str__", "owner", "status", "progress_percent", "step", "created_at", "completed_at"]
    list_filter = ["status", "current_step", "content_type", "created_at"]
    search_fields = ["title", "original_filename", "id", "owner__username", "error_message"]
    date_hierarchy = "created_at"
    inlines = [EntityInline, RelationshipInline]
    actions = ["reprocess", "cancel"]
    # Status moves only through the lifecycle (actions, pipeline); an edited stale form must not rewind it.
    readonly_fields = [
        "id", "download", "status", "progress_percent", "step", "step_progress_percent", "estimated_completion",
        "error_code",
        "error_message", "task_id", "original_filename", "content_type", "size_bytes", "page_count", "text_length",
        "created_at", "updated_at", "started_at", "completed_at",
    ]
    fieldsets = [
        # A stored file is shown as a link to the authorized download (the file widget would link MEDIA_URL) and
        # is never replaced in place: a new file is a new paper, validated and processed from the start.
        (None, {"fields": ["id", "title", "owner", "download", "original_filename", "content_type", "size_bytes"]}),
        ("Processing", {"fields": ["status", "progress_percent", "step", "step_progress_percent",
                                   "estimated_completion", "task_id", "started_at", "completed_at", "created_at",
                                   "updated_at"]}),
        ("Error", {"fields": ["error_code", "error_message"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        """The add form takes the file; a stored paper links its download instead."""
        if obj is not None:
            return self.fieldsets
        return [(None, {"fields": ["title", "owner", "file"]})]

    @admin.display(description="file")
    def download(self, paper: Paper) -> str:
        url = reverse("paper-file", args=[paper.pk])
        return format_html('<a href="{}">{}</a>', url, paper.original_filename or "download")

    def has_view_permission(self, request, obj=None) -> bool:
        """The admin's permissions, and for a paper the one access rule (staff see every paper)."""
        allowed = super().has_view_permission(request, obj)
        return allowed and (obj is None or selectors.paper_visible_to(request.user, obj.owner_id))

    def has_change_permission(self, request, obj=None) -> bool:
        """As has_view_permission, for changes."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or selectors.paper_visible_to(request.user, obj.owner_id))

    def get_inlines(self, request, obj):
        """Extracted data exists only once a paper has been stored."""
        return self.inlines if obj is not None else []

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, paper: Paper) -> str:
        return display.percent_text(paper.progress)

    @admin.display(description="step progress")
    def step_progress_percent(self, paper: Paper) -> str:
        return display.percent_text(paper.step_progress if paper.status == PaperStatus.PROCESSING else 0)

    @admin.display(description="current step", ordering="current_step")
    def step(self, paper: Paper) -> str:
        return display.step_label(paper.current_step, paper.status)

    def save_model(self, request, obj: Paper, form, change: bool) -> None:
        """A paper added here is validated and queued exactly like an API upload."""
        if change:
            super().save_model(request, obj, form, change)
            return
        created = services.paper_create(owner=obj.owner, file=form.cleaned_data["file"], title=obj.title)
        obj.pk = created.pk
        obj._state.adding = False

    @admin.action(description="Reprocess selected papers")
    def reprocess(self, request, queryset) -> None:
        self._apply(request, queryset, services.paper_reprocess, "queued for reprocessing")

    @admin.action(description="Cancel selected papers")
    def cancel(self, request, queryset) -> None:
        self._apply(request, queryset, services.paper_cancel, "cancelled")

    def _apply(self, request, queryset, service, done: str) -> None:
        ok, skipped = 0, []
        for paper in queryset:
            try:
                service(paper=paper)
                ok += 1
            except ValidationError as exc:
                skipped.append(f"{paper}: {exc.messages[0]}")
        if ok:
            messages.success(request, f"{ok} paper(s) {done}.")
        for line in skipped:
            messages.warning(request, line)


@admin.register(PaperEvent)
class PaperEventAdmin(admin.ModelAdmin):
    list_display = ["paper", "seq", "event_type", "created_at"]
    list_filter = ["event_type"]
    search_fields = ["paper__id", "paper__title"]
    readonly_fields = ["paper", "seq", "event_id", "event_type", "payload", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
