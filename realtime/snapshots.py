"""What a paper subscription starts with: the paper's snapshot and the events a resuming client missed."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async

from papers import selectors
from papers.selectors import paper_visible_to

from .background import for_this_loop


@dataclass(frozen=True)
class PaperState:
    """What a subscribe reply carries about a paper, plus the events to replay after it."""

    snapshot: dict[str, Any]
    owner_id: int
    missed: list[dict[str, Any]] = field(default_factory=list)
    recovery: dict[str, Any] | None = None


def _paper_state_sync(paper_id: str, since: int | None, replay_limit: int) -> PaperState | None:
    """Snapshot, and with `since` the missed events, of a paper for whoever may see it; None if it is missing."""
    # One statement each way: the state, its seq and the missed events describe the same moment.
    if since is None:
        paper = selectors.paper_state_for_rule(paper_id=paper_id)
        return None if paper is None else PaperState(selectors.paper_snapshot(paper=paper), paper.owner_id)
    found = selectors.paper_state_since_for_rule(paper_id=paper_id, since=since, limit=replay_limit)
    if found is None:
        return None
    paper, missed, recovery = found
    return PaperState(selectors.paper_snapshot(paper=paper), paper.owner_id, missed=missed, recovery=recovery)


# On Channels' one sync thread: in asyncio's thread pool each thread kept its pooled PostgreSQL connection
# open after the read (docs/architecture.md, "Connecting cheaply"); StateReads below keeps the reads few instead.
paper_state = database_sync_to_async(_paper_state_sync)

Key = tuple[str, int | None, int]  # paper, since, replay limit
Reader = tuple[Any, asyncio.Future]  # the user, and the future of the state they get


class StateReads:
    """The subscribes' reads, one statement per paper (and since) at a time, shared by every reader that asked for
    it before the statement was sent: a reconnect storm's thousand subscribers of one paper cost a handful of
    queries, not a thousand. Each reader gets the state only if the one access rule (paper_visible_to) lets them
    see the paper.

    A read is sent at the end of the loop turn in which it was asked, or, while the same read is still running,
    once it finished: always after every one of its readers joined the paper's group, so no event falls between
    a reader's join and the state it is given."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.asked: dict[Key, list[Reader]] | None = None  # this turn's, sent by _send at its end
        self.queued: dict[Key, list[Reader]] = {}  # asked while the same read was running; sent when it ends
        self.running: set[Key] = set()
        self.reading: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def read(self, user, paper_id: str, since: int | None, replay_limit: int) -> asyncio.Future:
        """A future of the paper's state for this user (None if missing or not theirs)."""
        future = self.loop.create_future()
        if self.asked is None:
            self.asked = {}
            self.loop.call_soon(self._send)  # once every task ready in this turn has asked
        self.asked.setdefault((paper_id, since, replay_limit), []).append((user, future))
        return future

    def _send(self) -> None:
        asked, self.asked = self.asked, None
        for key, readers in asked.items():
            if key in self.running:
                self.queued.setdefault(key, []).extend(readers)
            else:
                self._start(key, readers)

    def _next(self, key: Key) -> None:
        """The read of `key` ended: send the one its queued readers wait for."""
        self.running.discard(key)
        queued = self.queued.pop(key, None)
        if queued:
            self._start(key, queued)

    def _start(self, key: Key, readers: list[Reader]) -> None:
        if all(future.done() for _, future in readers):
            return  # every reader went away before it was sent (their connections closed): no query for nobody
        self.running.add(key)
        task = self.loop.create_task(self._read(key, readers))
        self.reading.add(task)
        task.add_done_callback(self.reading.discard)

    async def _read(self, key: Key, readers: list[Reader]) -> None:
        try:
            state = await paper_state(*key)
        except asyncio.CancelledError:  # the loop is shutting down: no reader waits forever, no read starts
            self.running.discard(key)
            for _, future in readers + self.queued.pop(key, []):
                future.cancel()
            raise
        except Exception as error:  # each reader gets it (a database failure answers their subscribe)
            self._next(key)
            for _, future in readers:
                if not future.done():
                    future.set_exception(error)
            return
        self._next(key)
        for user, future in readers:
            if not future.done():  # its reader may have gone (the connection closed meanwhile)
                visible = state is not None and paper_visible_to(user, state.owner_id)
                future.set_result(state if visible else None)


_reads: dict[asyncio.AbstractEventLoop, StateReads] = {}


async def visible_paper_state(user, paper_id: str, since: int | None, replay_limit: int) -> PaperState | None:
    """Snapshot, and with `since` the missed events, of a paper the user may see; None if missing or not theirs."""
    reads = for_this_loop(_reads, lambda: StateReads(asyncio.get_running_loop()))
    return await reads.read(user, paper_id, since, replay_limit)
