"""Hooks on users: a password change blacklists the user's refresh tokens and is announced once committed."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from . import services
from .signals import password_changed, password_changed_announce

__all__ = ["connect", "password_changed"]  # password_changed is defined with papers' other signals


def remember_stored_password(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    """Read the stored password hash before a save that may change it."""
    instance._stored_password = None
    if raw or instance._state.adding or (update_fields is not None and "password" not in update_fields):
        return
    instance._stored_password = (
        sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    )


def password_saved(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """A changed password ends every session of the account: refresh tokens now, sockets after commit."""
    stored = getattr(instance, "_stored_password", None)
    if raw or created or stored is None or stored == instance.password:
        return
    services.refresh_tokens_blacklist(user_id=instance.pk)  # in the same transaction as the new password
    password_changed_announce(sender=sender, user_id=instance.pk)


def connect() -> None:
    """Connect the hooks once (called from PapersConfig.ready)."""
    user_model = get_user_model()
    pre_save.connect(remember_stored_password, sender=user_model, dispatch_uid="papers.remember_stored_password")
    post_save.connect(password_saved, sender=user_model, dispatch_uid="papers.password_saved")
