"""Background work: the tasks of one connection (kept until done, cancelled together), and per-event-loop instances."""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def for_this_loop(registry: dict[asyncio.AbstractEventLoop, T], make: Callable[[], T]) -> T:
    """The running loop's instance in registry, made on first use (asyncio objects belong to one loop; tests run
    a loop each), forgetting the instances of loops that have closed."""
    loop = asyncio.get_running_loop()
    instance = registry.get(loop)
    if instance is None:
        for stale in [other for other in registry if other.is_closed()]:
            del registry[stale]
        instance = registry[loop] = make()
    return instance


class BackgroundTasks:
    """The tasks a connection started; each is referenced until done, so none is collected mid-flight."""

    __slots__ = ("_tasks", "closed")

    def __init__(self):
        self._tasks: set[asyncio.Task] | None = None  # made with the first task: most connections start none
        self.closed = False

    def start(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task | None:
        """Run a coroutine in a task of its own; after close() it is not started at all."""
        if self.closed:
            coroutine.close()
            return None
        task = asyncio.get_running_loop().create_task(coroutine)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        """Cancel every task still running; nothing new starts after this."""
        self.closed = True
        for task in list(self._tasks or ()):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks or ())


class Timer:
    """A cancellable delayed call of a coroutine function, run as one of a connection's background tasks."""

    __slots__ = ("tasks", "_handle", "_callback", "_paused")

    def __init__(self, tasks: BackgroundTasks):
        self.tasks = tasks
        self._handle: asyncio.TimerHandle | None = None
        self._callback: Callable[[], Awaitable[None]] | None = None
        self._paused: tuple[float, Callable[[], Awaitable[None]]] | None = None

    def start(self, delay: float, callback: Callable[[], Awaitable[None]]) -> None:
        """(Re)schedule callback after delay seconds."""
        loop = asyncio.get_running_loop()
        self._schedule(loop.time() + max(delay, 0), callback)

    def _schedule(self, when: float, callback: Callable[[], Awaitable[None]]) -> None:
        self.cancel()
        self._callback = callback
        self._handle = asyncio.get_running_loop().call_at(when, self._fire, callback)

    def _fire(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._handle = None
        self.tasks.start(callback())

    def pause(self) -> None:
        """Hold the scheduled call back until resume(), which keeps its original time (or fires at once)."""
        if self._handle is not None:
            self._paused = (self._handle.when(), self._callback)
            self._handle.cancel()
            self._handle = None

    def resume(self) -> None:
        """Schedule again what pause() held back, unless something was scheduled or cancelled meanwhile."""
        paused, self._paused = self._paused, None
        if paused is not None and self._handle is None:
            self._schedule(*paused)

    def cancel(self) -> None:
        """Forget the scheduled call, if any."""
        self._paused = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
