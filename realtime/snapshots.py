"""What a paper subscription starts with: the paper's snapshot and the events a resuming client missed."""

from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async

from papers import selectors


@dataclass(frozen=True)
class PaperState:
    """What a subscribe reply carries about a paper, plus the events to replay after it."""

    snapshot: dict[str, Any]
    owner_id: int
    missed: list[dict[str, Any]] = field(default_factory=list)
    recovery: dict[str, Any] | None = None


def _visible_paper_state_sync(user, paper_id: str, since: int | None, replay_limit: int) -> PaperState | None:
    """Snapshot, and with `since` the missed events, of a paper the user may see; None if missing or not theirs."""
    paper = selectors.paper_state_get(user=user, paper_id=paper_id)  # state and its seq in one statement
    if paper is None:
        return None
    snapshot = selectors.paper_snapshot(paper=paper)
    if since is None:
        return PaperState(snapshot=snapshot, owner_id=paper.owner_id)
    missed, recovery = selectors.paper_recovery(
        paper_id=paper.pk, since=since, up_to=snapshot["seq"], limit=replay_limit
    )
    return PaperState(snapshot=snapshot, owner_id=paper.owner_id, missed=missed, recovery=recovery)


visible_paper_state = database_sync_to_async(_visible_paper_state_sync)
