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
    # One statement each way: the state, its seq and the missed events describe the same moment.
    if since is None:
        paper = selectors.paper_state_get(user=user, paper_id=paper_id)
        return None if paper is None else PaperState(selectors.paper_snapshot(paper=paper), paper.owner_id)
    found = selectors.paper_state_since(user=user, paper_id=paper_id, since=since, limit=replay_limit)
    if found is None:
        return None
    paper, missed, recovery = found
    return PaperState(selectors.paper_snapshot(paper=paper), paper.owner_id, missed=missed, recovery=recovery)


# Off the one thread Channels runs sync code in by default: in a reconnect storm the subscribes' queries run side
# by side (each thread its own connection, from the pool on PostgreSQL) instead of one after another; they read
# only, so nothing orders them.
visible_paper_state = database_sync_to_async(_visible_paper_state_sync, thread_sensitive=False)
