"""What papers announces once a change has committed: logged events, lost access and changed passwords.

papers knows nothing of WebSockets; realtime connects receivers to these signals in RealtimeConfig.ready()."""

from typing import Any

from django.db import transaction
from django.dispatch import Signal

# Sent after the commit of a logged paper event, with `payload` (its wire form, seq and event_id included)
# and `owner_id` (the paper's owner when the event was logged).
event_committed = Signal()

# Sent after the commit of a change that may end subscriptions to a paper, with `paper_id` and `reason`:
# "deleted", or "access_changed" (the paper may have changed hands; subscribers re-check their access), and
# `owner_id` (the owner of a deleted paper, whose topic subscribers are told it is gone; None otherwise).
paper_access_changed = Signal()

# Sent after the commit of a save that changed a user's password, with `user_id`: every session is void.
password_changed = Signal()


def event_committed_announce(*, payload: dict[str, Any], owner_id: Any) -> None:
    """Announce a logged event once the transaction that logged it commits; never if it rolls back."""
    # Robust: a failing receiver (Redis down) is logged by Django and never breaks a committed request.
    transaction.on_commit(
        lambda: event_committed.send(sender=None, payload=payload, owner_id=owner_id), robust=True
    )


def paper_access_changed_announce(
    *, paper_id: Any, reason: str, owner_id: Any = None, using: str | None = None
) -> None:
    """Announce, once committed, that subscriptions to a paper must end ("deleted") or be re-checked."""
    paper_id = str(paper_id)
    transaction.on_commit(
        lambda: paper_access_changed.send(sender=None, paper_id=paper_id, reason=reason, owner_id=owner_id),
        using=using, robust=True,
    )


def password_changed_announce(*, sender: Any, user_id: int) -> None:
    """Announce, once committed, that a user's password changed."""
    transaction.on_commit(lambda: password_changed.send(sender=sender, user_id=user_id), robust=True)
