"""The launcher: its restart policy (the delay doubles while a child keeps crashing, and resets once it ran stably),
and the sockets several web processes share."""

import subprocess
import sys

import pytest

from paperpipeline.launcher import (
    RESTART_DELAY_MAX,
    STABLE_AFTER,
    Child,
    Launcher,
    listening_sockets,
    process_commands,
    web_processes,
)


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


@pytest.mark.parametrize("value", ["0", "-1", "two", "65", ""])
def test_web_processes_must_be_a_sensible_count(monkeypatch, value):
    monkeypatch.setenv("WEB_PROCESSES", value)
    with pytest.raises(ValueError, match="WEB_PROCESSES"):
        web_processes()


def test_web_processes_default_to_one(monkeypatch):
    monkeypatch.delenv("WEB_PROCESSES", raising=False)
    assert web_processes() == 1


def test_the_web_processes_sockets_share_one_port():
    sockets = listening_sockets("127.0.0.1", 0, 1, 8)  # a free port, then the others join it
    port = sockets[0].getsockname()[1]
    sockets[0].close()
    sockets = listening_sockets("127.0.0.1", port, 3, 8)
    try:
        assert {s.getsockname() for s in sockets} == {("127.0.0.1", port)}
        assert process_commands(port="", fd=sockets[0].fileno())["daphne"][3:5] == ["--fd", str(sockets[0].fileno())]
    finally:
        for s in sockets:
            s.close()
