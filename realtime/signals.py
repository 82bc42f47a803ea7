"""Receivers that turn what papers and auth announce into broadcasts and control messages.

Committed paper events go to their groups; a deleted or re-owned paper ends its subscriptions; a deactivated or
deleted user's connections are closed, and so are all of them when the password changes and a session's when it
logs out; a staff change is applied live; every change of a user voids the account facts token checks cached."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from papers.signals import event_committed, paper_access_changed, password_changed

from . import accounts
from .broadcast import (
    STAFF_PAPERS_GROUP,
    broadcast_control,
    broadcast_event,
    paper_group,
    session_connections_group,
    user_connections_group,
    user_group,
)


def paper_event_committed(sender, payload: dict, owner_id=None, **kwargs) -> None:
    """Publish a paper event papers logged and committed (sent after commit already)."""
    broadcast_event(payload, owner_id=owner_id)


def paper_access_revoked(sender, paper_id: str, reason: str, owner_id=None, **kwargs) -> None:
    """Tell every subscriber of the paper that it is gone or to re-check access, and the topic "papers" of its
    owner and of staff that a deleted paper is gone (sent after commit already)."""
    broadcast_control(paper_group(paper_id), {"type": "paper.revoked", "paper_id": str(paper_id), "reason": reason})
    if reason == "deleted" and owner_id is not None:
        message = {"type": "paper.deleted", "paper_id": str(paper_id), "owner_id": owner_id}
        for group in (user_group(owner_id), STAFF_PAPERS_GROUP):
            broadcast_control(group, message)


def revoke_user_connections(user_id: int, reason: str = "inactive") -> None:
    """After commit, close every connection authenticated as this user."""
    group, message = user_connections_group(user_id), {"type": "user.revoked", "reason": reason}
    transaction.on_commit(lambda: broadcast_control(group, message), robust=True)


def account_changed(user_id: int) -> None:
    """After commit, void the account facts token checks cached for this user (realtime.accounts)."""
    transaction.on_commit(lambda: accounts.account_changed(user_id), robust=True)


def user_saved(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """Deactivation revokes access at once, not when the token expires; a staff change applies at once; any save
    may change what a token check reads (active, staff, password, username)."""
    account_changed(instance.pk)
    if raw or created:
        return
    if not instance.is_active:
        revoke_user_connections(instance.pk)
        return
    group, message = user_connections_group(instance.pk), {"type": "user.changed", "is_staff": instance.is_staff}
    transaction.on_commit(lambda: broadcast_control(group, message), robust=True)


def user_deleted(sender, instance, **kwargs) -> None:
    """Deletion revokes access like deactivation."""
    account_changed(instance.pk)
    revoke_user_connections(instance.pk)


def user_password_changed(sender, user_id: int, **kwargs) -> None:
    """Every token and session of the account is void now: close its sockets (sent after commit already)."""
    broadcast_control(user_connections_group(user_id), {"type": "user.revoked", "reason": "password_changed"})


def session_logged_out(sender, request=None, **kwargs) -> None:
    """Close the sockets this session opened; the user's other sessions and JWT sockets stay."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        group = session_connections_group(session_key)
        transaction.on_commit(lambda: broadcast_control(group, {"type": "session.revoked"}), robust=True)


def connect() -> None:
    """Connect the hooks once (called from RealtimeConfig.ready)."""
    user_model = get_user_model()
    event_committed.connect(paper_event_committed, dispatch_uid="realtime.paper_event_committed")
    paper_access_changed.connect(paper_access_revoked, dispatch_uid="realtime.paper_access_revoked")
    post_save.connect(user_saved, sender=user_model, dispatch_uid="realtime.user_saved")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid="realtime.user_deleted")
    password_changed.connect(user_password_changed, dispatch_uid="realtime.user_password_changed")
    user_logged_out.connect(session_logged_out, dispatch_uid="realtime.session_logged_out")
