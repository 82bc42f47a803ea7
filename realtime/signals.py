"""Hooks on users: a deactivated or deleted user's connections are closed; a staff change is applied live."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .broadcast import broadcast_control, user_connections_group


def revoke_user_connections(user_id: int) -> None:
    """After commit, close every connection authenticated as this user."""
    group = user_connections_group(user_id)
    transaction.on_commit(lambda: broadcast_control(group, {"type": "user.revoked"}), robust=True)


def user_saved(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """Deactivation revokes access at once, not when the token expires; a staff change applies at once."""
    if raw or created:
        return
    if not instance.is_active:
        revoke_user_connections(instance.pk)
        return
    group, message = user_connections_group(instance.pk), {"type": "user.changed", "is_staff": instance.is_staff}
    transaction.on_commit(lambda: broadcast_control(group, message), robust=True)


def user_deleted(sender, instance, **kwargs) -> None:
    """Deletion revokes access like deactivation."""
    revoke_user_connections(instance.pk)


def connect() -> None:
    """Connect the hooks once (called from RealtimeConfig.ready)."""
    user_model = get_user_model()
    post_save.connect(user_saved, sender=user_model, dispatch_uid="realtime.user_saved")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid="realtime.user_deleted")
