"""The one hook that turns every status change of a Paper, from anywhere, into a status_changed event."""

from django.db.models.signals import post_save, pre_save

from realtime.events import StatusEvent

from .models import Paper

DEFAULT_STATUS_MESSAGES = {
    "uploaded": "Paper uploaded",
    "queued": "Queued for processing",
    "processing": "Processing started",
    "completed": "Processing completed",
    "failed": "Processing failed",
    "cancelled": "Processing cancelled",
}


def remember_old_status(sender, instance: Paper, raw: bool = False, update_fields=None, **kwargs) -> None:
    """Read the stored status under a row lock, so the comparison is right even against a stale instance."""
    instance._status_before_save = None
    if raw or instance._state.adding or (update_fields is not None and "status" not in update_fields):
        return
    row = Paper.objects.select_for_update().filter(pk=instance.pk).values_list("status", flat=True).first()
    instance._status_before_save = row


def emit_status_changed(sender, instance: Paper, created: bool, raw: bool = False, **kwargs) -> None:
    """Append a status_changed event to the paper's log when the saved status differs from the stored one."""
    old = getattr(instance, "_status_before_save", None)
    if raw or created or old is None or old == instance.status:
        return
    from .services import paper_event_append  # services import models; import here to avoid a cycle

    message = getattr(instance, "status_message", "") or DEFAULT_STATUS_MESSAGES.get(instance.status, "")
    paper_event_append(
        paper=instance,
        event=StatusEvent(paper_id=instance.pk, old_status=old, new_status=instance.status, message=message),
    )


def connect() -> None:
    """Connect the hooks once (called from PapersConfig.ready)."""
    pre_save.connect(remember_old_status, sender=Paper, dispatch_uid="papers.remember_old_status")
    post_save.connect(emit_status_changed, sender=Paper, dispatch_uid="papers.emit_status_changed")
