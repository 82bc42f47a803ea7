"""Hooks on Paper: the one status hook, and what a deletion or an owner change ends.

A status change becomes a status_changed event; a save that may change the owner and a deletion end or
re-check subscriptions; a deleted paper's file goes once the deletion commits."""

from typing import Any

from django.db import connections, transaction
from django.db.models.signals import post_delete, post_save

from realtime.events import StatusEvent

from .models import DEFAULT_STATUS_MESSAGES, Paper, PaperStatus
from .selectors import paper_status_logged
from .services import lock_paper, paper_event_append
from .signals import paper_access_changed_announce


def paper_saved(sender, instance: Paper, created: bool, raw: bool = False, using: str = "default",
                update_fields=None, **kwargs) -> None:
    """The one status hook: log a status_changed event when a save moved the status away from the logged one."""
    if raw or created:
        return
    written = None if update_fields is None else set(update_fields)
    if written is None or written & {"owner", "owner_id"}:
        # The previous owner is not known after the UPDATE; subscribers re-check (a no-op when it is unchanged).
        paper_access_changed_announce(paper_id=instance.pk, reason="access_changed", using=using)
    if written is not None and "status" not in written:
        return
    fields = ("owner_id", "status", "status_message")
    if connections[using].in_atomic_block:
        # The save's own UPDATE holds the paper's row lock until the transaction ends: no other status change
        # or event of this paper can interleave, so a plain read sees the row as this save left it.
        _status_change_log(instance, Paper.objects.using(using).filter(pk=instance.pk).values(*fields).first())
        return
    # Autocommit (a shell save): the UPDATE has committed already. Lock the row once and log what it holds
    # now, which is also right when another save changed it again in between.
    with transaction.atomic(using=using):
        _status_change_log(instance, lock_paper(paper_id=instance.pk, fields=fields))


def _status_change_log(paper: Paper, row: dict[str, Any] | None) -> None:
    """Append status_changed from the logged status to the row's, if they differ (the caller holds the row lock)."""
    if row is None:
        return  # deleted meanwhile
    previous = paper_status_logged(paper_id=paper.pk)
    old_status, old_message = previous if previous else (PaperStatus.UPLOADED, "")
    status, message = row["status"], row["status_message"]
    if old_status == status:
        return
    # A message left over from the previous change was not written for this one: say what the status means.
    if not message or message == old_message:
        message = DEFAULT_STATUS_MESSAGES.get(status, "")
    paper_event_append(
        paper=paper,
        event=StatusEvent(paper_id=paper.pk, old_status=old_status, new_status=status, message=message),
        owner_id=row["owner_id"],
    )


def paper_deleted(sender, instance: Paper, using: str | None = None, **kwargs) -> None:
    """A deleted paper (also by cascade) ends its subscriptions, and its owner's and staff's lists drop it."""
    paper_access_changed_announce(paper_id=instance.pk, reason="deleted", owner_id=instance.owner_id, using=using)


def paper_file_delete(sender, instance: Paper, using: str | None = None, **kwargs) -> None:
    """Delete a deleted paper's file once the deletion commits, whatever deleted it; a rollback keeps it."""
    storage, name = instance.file.storage, instance.file.name
    if name:
        # Robust: a file that cannot be deleted is logged by Django, never raised into a committed request.
        transaction.on_commit(lambda: storage.delete(name), using=using, robust=True)


def connect() -> None:
    """Connect the hooks once (called from PapersConfig.ready)."""
    post_save.connect(paper_saved, sender=Paper, dispatch_uid="papers.paper_saved")
    post_delete.connect(paper_deleted, sender=Paper, dispatch_uid="papers.paper_deleted")
    post_delete.connect(paper_file_delete, sender=Paper, dispatch_uid="papers.paper_file_delete")
