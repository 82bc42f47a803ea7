"""manage.py watch_paper: follow one paper (or every paper) live over /ws/papers with the Python client.

Exit status (docs/python-client.md): 0 the paper completed, 1 it failed, 3 it was cancelled, 4 it could not be
watched (no such paper, refused credentials, access revoked), 130 interrupted; 2 is a usage error."""

import asyncio
import getpass
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from paperclient import (
    AuthenticationError,
    NotFoundError,
    PaperClient,
    PaperClientError,
    StatusChanged,
    Subscribed,
)
from paperclient.render import make_renderer

EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 3}
EXIT_UNWATCHABLE = 4
EXIT_INTERRUPTED = 130


class Command(BaseCommand):
    help = "Watch a paper's processing live (progress, entities, relationships); exit with its final status."

    def add_arguments(self, parser):
        parser.add_argument("paper_id", nargs="?", help="The paper's id (UUID).")
        parser.add_argument("--all", action="store_true", help="Watch every paper you may see, until interrupted.")
        parser.add_argument(
            "--url", default=os.environ.get("PAPERPIPELINE_URL", "http://127.0.0.1:8000"),
            help="The server's base URL (default: $PAPERPIPELINE_URL or http://127.0.0.1:8000).",
        )
        parser.add_argument(
            "--username", default=os.environ.get("PAPERPIPELINE_USERNAME"),
            help="Log in as this user (password from $PAPERPIPELINE_PASSWORD, else asked for).",
        )
        parser.add_argument(
            "--token", default=os.environ.get("PAPERPIPELINE_TOKEN"),
            help="An access token instead of a username (default: $PAPERPIPELINE_TOKEN).",
        )
        parser.add_argument("--plain", action="store_true", help="Plain lines, also on a terminal.")

    def handle(self, *args, paper_id=None, all=False, url, username, token, plain, **options):
        if bool(paper_id) == bool(all):
            raise CommandError("give a paper id or --all (not both)", returncode=2)
        if not (username or token):
            raise CommandError("give --username (or $PAPERPIPELINE_USERNAME) or --token", returncode=2)
        password = None
        if username and not token:
            password = os.environ.get("PAPERPIPELINE_PASSWORD")
            if password is None:
                password = getpass.getpass(f"Password for {username}: ")
        client = PaperClient(url, username=username, password=password, access=token)
        renderer = make_renderer(stream=getattr(self.stdout, "_out", sys.stdout), plain=plain)
        try:
            status = asyncio.run(_watch(client, renderer, paper_id))
        except KeyboardInterrupt:
            status = None
            code = EXIT_INTERRUPTED
        except NotFoundError:
            raise CommandError(f"no paper {paper_id} that you may see", returncode=EXIT_UNWATCHABLE) from None
        except (AuthenticationError, PaperClientError) as exc:
            raise CommandError(str(exc), returncode=EXIT_UNWATCHABLE) from None
        finally:
            renderer.close()
        if status is not None:
            code = EXIT_CODES.get(status, EXIT_UNWATCHABLE)
        sys.exit(code)


async def _watch(client: PaperClient, renderer, paper_id: str | None) -> str | None:
    """Render messages until the paper reaches a final status (its name), or for ever with --all."""
    async with client:
        if paper_id is None:
            await client.subscribe_papers()
        else:
            # since=0: the paper's whole retained log first, so a late watcher sees every entity too.
            subscribed = await client.subscribe_paper(paper_id, since=0)
            if _already_final(subscribed):
                renderer.show(subscribed)
                return subscribed.snapshot.status
        target = None
        async for message in client:
            renderer.show(message)
            if paper_id is None:
                continue
            if isinstance(message, Subscribed) and message.snapshot is not None and target is None:
                target = message.snapshot.seq  # a final status before this seq belongs to an earlier run
            if isinstance(message, StatusChanged) and message.final and message.seq >= (target or 0):
                return message.new_status
    return None


def _already_final(subscribed: Subscribed) -> bool:
    """A final paper whose log is not replayed (pruned): its snapshot is all there is to show."""
    recovery = subscribed.recovery
    return subscribed.snapshot.final and recovery is not None and not recovery.complete
