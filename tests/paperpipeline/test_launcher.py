"""The launcher's restart policy: the delay doubles while a child keeps crashing, and resets once it ran stably."""

import subprocess
import sys

from paperpipeline.launcher import RESTART_DELAY_MAX, STABLE_AFTER, Child, Launcher


def crashed_child() -> Child:
    """A child whose process has already exited with status 3."""
    child = Child("daphne", lambda: subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]))
    child.start()
    child.process.wait()
    return child


def test_the_restart_delay_doubles_up_to_the_cap_then_resets_after_a_stable_run(capsys):
    launcher, child = Launcher(), crashed_child()
    delays = []
    for _ in range(8):
        now = child.started_at + 0.5  # crashed half a second after starting
        launcher._schedule_restart(child, now)
        delays.append(round(child.restart_at - now, 6))  # (now + d) - now is d only up to float rounding
        child.start()
        child.process.wait()
    assert delays == [1, 2, 4, 8, 16, RESTART_DELAY_MAX, RESTART_DELAY_MAX, RESTART_DELAY_MAX]
    assert "daphne exited with status 3; restarting in 30 s" in capsys.readouterr().out

    launcher._schedule_restart(child, child.started_at + STABLE_AFTER)
    assert round(child.restart_at - (child.started_at + STABLE_AFTER), 6) == 1
    assert capsys.readouterr().out.strip().endswith("daphne exited with status 3; restarting in 1 s")
