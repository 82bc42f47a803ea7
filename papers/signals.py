"""Hooks on Paper: status changes become status_changed events; deletion and owner change revoke access; a
deleted paper's file goes once the deletion commits (service, admin, cascade from its owner, queryset)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from realtime.broadcast import broadcast_control, paper_group
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


def remember_stored_state(sender, instance: Paper, raw: bool = False, update_fields=None, **kwargs) -> None:
    """Read the stored status and owner under a row lock, so comparisons are right against a stale instance."""
    instance._stored_before_save = None
    watched = {"status", "owner", "owner_id"}
    if raw or instance._state.adding or (update_fields is not None and not watched & set(update_fields)):
        return
    instance._stored_before_save = (
        Paper.objects.select_for_update().filter(pk=instance.pk).values("status", "owner_id").first()
    )


def emit_status_changed(sender, instance: Paper, created: bool, raw: bool = False, **kwargs) -> None:
    """Append a status_changed event to the paper's log when the saved status differs from the stored one."""
    stored = getattr(instance, "_stored_before_save", None)
    if raw or created or stored is None:
        return
    if stored["owner_id"] != instance.owner_id:
        revoke_paper_subscriptions(instance.pk, reason="access_changed")
    old = stored["status"]
    if old == instance.status:
        return
    from .services import paper_event_append  # services import models; import here to avoid a cycle

    message = getattr(instance, "status_message", "") or DEFAULT_STATUS_MESSAGES.get(instance.status, "")
    paper_event_append(
        paper=instance,
        event=StatusEvent(paper_id=instance.pk, old_status=old, new_status=instance.status, message=message),
    )


def revoke_paper_subscriptions(paper_id, *, reason: str) -> None:
    """After commit, tell every subscriber of the paper to re-check access (or that it is gone)."""
    message = {"type": "paper.revoked", "paper_id": str(paper_id), "reason": reason}
    transaction.on_commit(lambda: broadcast_control(paper_group(paper_id), message), robust=True)


def paper_deleted(sender, instance: Paper, **kwargs) -> None:
    """A deleted paper (also by cascade) ends its subscriptions."""
    revoke_paper_subscriptions(instance.pk, reason="deleted")


def paper_file_delete(sender, instance: Paper, using: str | None = None, **kwargs) -> None:
    """Delete a deleted paper's file once the deletion commits, whatever deleted it; a rollback keeps it."""
    storage, name = instance.file.storage, instance.file.name
    if name:
        # Robust: a file that cannot be deleted is logged by Django, never raised into a committed request.
        transaction.on_commit(lambda: storage.delete(name), using=using, robust=True)


def connect() -> None:
    """Connect the hooks once (called from PapersConfig.ready)."""
    pre_save.connect(remember_stored_state, sender=Paper, dispatch_uid="papers.remember_stored_state")
    post_save.connect(emit_status_changed, sender=Paper, dispatch_uid="papers.emit_status_changed")
    post_delete.connect(paper_deleted, sender=Paper, dispatch_uid="papers.paper_deleted")
    post_delete.connect(paper_file_delete, sender=Paper, dispatch_uid="papers.paper_file_delete")
