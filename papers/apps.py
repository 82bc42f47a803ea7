"""App config of papers: connects the status hook and tunes SQLite for several processes."""

from django.apps import AppConfig


class PapersConfig(AppConfig):
    """Papers, their pipeline and their event log."""

    name = "papers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect signals once."""
        from . import accounts, hooks

        hooks.connect()
        accounts.connect()
