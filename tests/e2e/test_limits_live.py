"""Limits on a real worker: a paper past the soft or the hard time limit, or over the memory cap, ends failed
with a clear error event, and the worker goes on processing papers."""

import os

import pytest

from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system
from tests.e2e.slow_extractor import HUNGRY_MARKER, MARKER, STUBBORN_MARKER
from tests.e2e.test_pipeline_live import events_until_final, open_client, token, upload
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOFT_LIMIT, HARD_LIMIT = 3, 6  # seconds; a SLOW-PAPER takes 4 s in entity extraction, a plain one well under 1 s


@pytest.fixture(scope="module")
def limited_system(django_db_setup, django_db_blocker):
    """A system whose pipeline worker has tiny time limits and the default memory cap."""
    with running_system(
        redis_url=os.environ["REDIS_URL"], name="limits-",
        PAPER_TASK_SOFT_TIME_LIMIT=str(SOFT_LIMIT), PAPER_TASK_TIME_LIMIT=str(HARD_LIMIT),
    ) as system:
        yield system


@pytest.fixture
def alice(django_user_model):
    django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    return ("alice", "pw-alice-123")


async def process(system, access: str, name: str, content: bytes) -> tuple[dict, list[dict]]:
    """Upload a paper and return it with its events up to its final status."""
    ws = await open_client(system, access, "papers")
    paper = await upload(system, access, name, content)
    events = await events_until_final(ws, paper["id"])
    await ws.close()
    for event in events:
        assert_wire_event(event)
    return paper, events


def failure(events: list[dict]) -> tuple[str, str, str]:
    """The error event's code and message, and the final status."""
    (error,) = [e for e in events if e["event_type"] == "error"]
    return error["error_code"], error["error_message"], events[-1]["new_status"]


async def test_papers_past_the_time_limits_or_the_memory_cap_fail_clearly(limited_system, alice):
    access = await token(limited_system, *alice)

    _paper, events = await process(limited_system, access, "slow.txt", f"{MARKER}\n{SAMPLE_TEXT}".encode())
    code, message, status = failure(events)
    assert (code, status) == ("time_limit_exceeded", "failed"), limited_system.log_tails()
    assert message.startswith(f"Processing took longer than the {SOFT_LIMIT} s time limit")

    # Ignores the soft limit: the worker kills its process at the hard limit and fails the paper itself.
    _paper, events = await process(limited_system, access, "stuck.txt", f"{STUBBORN_MARKER}\n{SAMPLE_TEXT}".encode())
    code, message, status = failure(events)
    assert (code, status) == ("time_limit_exceeded", "failed"), limited_system.log_tails()
    assert message.startswith(f"Processing took longer than the {HARD_LIMIT} s time limit")
    assert "processing_failed" not in [e.get("error_code") for e in events]

    _paper, events = await process(limited_system, access, "hungry.txt", f"{HUNGRY_MARKER}\n{SAMPLE_TEXT}".encode())
    code, message, status = failure(events)
    assert (code, status) == ("out_of_memory", "failed"), limited_system.log_tails()
    assert "1024 MiB" in message

    _paper, events = await process(limited_system, access, "fine.txt", SAMPLE_TEXT.encode())
    assert events[-1]["new_status"] == "completed", limited_system.log_tails()
