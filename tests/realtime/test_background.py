"""A connection's background tasks are kept until done and cancelled on close; its timers pause and resume."""

import asyncio

from realtime.background import BackgroundTasks, Timer


async def test_tasks_are_kept_until_done_and_cancelled_on_close():
    tasks = BackgroundTasks()
    finished, blocked = asyncio.Event(), asyncio.Event()

    async def quick():
        finished.set()

    async def forever():
        await blocked.wait()

    tasks.start(quick())
    stuck = tasks.start(forever())
    await finished.wait()
    await asyncio.sleep(0)  # the done callback runs on the next turn
    assert len(tasks) == 1, "a finished task is forgotten, a running one kept"
    tasks.close()
    await asyncio.gather(stuck, return_exceptions=True)
    assert stuck.cancelled() and len(tasks) == 0
    late = quick()
    assert tasks.start(late) is None and late.cr_frame is None, "nothing starts after close (and nothing leaks)"


def paused_timer(delay: float) -> tuple[Timer, asyncio.Event]:
    """A timer started and paused at once, and the event its callback sets."""
    fired = asyncio.Event()

    async def callback():
        fired.set()

    timer = Timer(BackgroundTasks())
    timer.start(delay, callback)
    timer.pause()
    return timer, fired


async def test_a_paused_timer_fires_at_its_original_time_once_resumed():
    timer, fired = paused_timer(0.05)
    await asyncio.sleep(0.1)
    assert not fired.is_set(), "a paused timer does not fire"
    timer.resume()
    await asyncio.wait_for(fired.wait(), 1)  # already due: it fires at once


async def test_a_cancelled_timer_is_not_resumed():
    timer, fired = paused_timer(0.01)
    timer.cancel()
    timer.resume()
    await asyncio.sleep(0.05)
    assert not fired.is_set()
