"""Showing a watch on a terminal: live progress bars with rich, or one plain line per message elsewhere."""

import re
from typing import TextIO

from .events import (
    Authenticated,
    Disconnected,
    EntityExtracted,
    PaperError,
    ProgressUpdated,
    RelationshipExtracted,
    StatusChanged,
    Subscribed,
    SystemStatus,
    Unsubscribed,
)

# Control characters (C0 but tab and newline, DEL, C1) and bidirectional overrides in a server's text (a title, an
# entity name) would steer the terminal: they are shown as U+FFFD.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text safe to write to a terminal."""
    return _UNSAFE.sub("\ufffd", text)


class PlainRenderer:
    """One line per message: for pipes, logs and tests."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.names: dict[str, str] = {}  # entity id → name, to print relationships readably

    def show(self, message) -> None:
        line = self.describe(message)
        if line:
            self.stream.write(printable(line) + "\n")
            self.stream.flush()

    def describe(self, message) -> str | None:
        """The line for one message (None: nothing worth a line)."""
        short = getattr(message, "paper_id", "") or ""
        short = short[:8]
        match message:
            case Subscribed(snapshot=snapshot) if snapshot is not None:
                return (f"{short} {snapshot.title or '(untitled)'}: {snapshot.status}, "
                        f"{snapshot.progress:.0%} {snapshot.step or ''}".rstrip())
            case Subscribed(topic="papers"):
                return "watching every paper you may see"
            case Subscribed(topic="system"):
                return "watching the system status"
            case StatusChanged():
                text = f"{short} status {message.old_status} -> {message.new_status}"
                return text + (f": {message.message}" if message.message else "")
            case ProgressUpdated():
                return f"{short} progress {message.progress:.0%} {message.step} {message.step_progress:.0%}"
            case EntityExtracted():
                self.names[message.entity_id] = message.entity_name
                return f"{short} entity {message.entity_type} {message.entity_name} ({message.confidence:.2f})"
            case RelationshipExtracted():
                source = self.names.get(message.source_id, message.source_id)
                target = self.names.get(message.target_id, message.target_id)
                result = f" {message.metric} {message.score}" if message.metric and message.score else ""
                return (f"{short} relationship {source} {message.relationship_type} {target}{result} "
                        f"({message.confidence:.2f})")
            case PaperError():
                return f"{short} error {message.error_code}: {message.error_message}"
            case SystemStatus():
                return (f"system queue={message.queue_size} workers={message.active_workers} "
                        f"rate={message.processing_rate}/min load={message.system_load:.2f}")
            case Unsubscribed():
                return f"{short} no longer visible ({message.reason})"
            case Disconnected():
                return f"disconnected ({message.reason}); reconnecting in {message.retry_in:.1f} s"
            case Authenticated():
                return None
        return None

    def close(self) -> None:
        pass


class RichRenderer(PlainRenderer):
    """A progress bar per paper, with entities and relationships printed above the bars as they arrive."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.console = Console(file=stream)
        self.progress = Progress(
            TextColumn("[bold]{task.fields[title]}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[step]}"), console=self.console, transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.progress.start()

    def show(self, message) -> None:
        paper_id = getattr(message, "paper_id", None)
        if paper_id:
            self._update_bar(paper_id, message)
        if isinstance(message, ProgressUpdated):
            return  # the bar shows it
        line = self.describe(message)
        if line:
            self.progress.console.print(printable(line), markup=False, highlight=False)

    def _update_bar(self, paper_id: str, message) -> None:
        if paper_id not in self.tasks:
            self.tasks[paper_id] = self.progress.add_task("", total=1.0, title=paper_id[:8], step="")
        task = self.tasks[paper_id]
        match message:
            case Subscribed(snapshot=snapshot) if snapshot is not None:
                from rich.markup import escape  # rich is needed only on a terminal

                title = escape(printable(snapshot.title or paper_id[:8]))  # the title column reads markup
                self.progress.update(task, completed=snapshot.progress, step=snapshot.step or snapshot.status,
                                     title=title)
            case ProgressUpdated():
                self.progress.update(task, completed=message.progress, step=message.step.replace("_", " "))
            case StatusChanged():
                done = {"completed": 1.0}.get(message.new_status)
                self.progress.update(task, step=message.new_status, **({"completed": done} if done else {}))

    def close(self) -> None:
        self.progress.stop()


def make_renderer(*, stream: TextIO, plain: bool = False) -> PlainRenderer:
    """Progress bars on a terminal; plain lines when asked or when the output is not a terminal."""
    if plain or not stream.isatty():
        return PlainRenderer(stream)
    return RichRenderer(stream)
