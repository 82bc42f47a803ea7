"""Limits on a real worker: a paper past the soft or the hard time limit, or over the memory cap, ends failed
with a clear error event on its first attempt, and the worker goes on processing papers."""

import pytest

from tests.conftest import SAMPLE_TEXT, papers_dir
from tests.e2e.conftest import running_system
from tests.e2e.slow_extractor import HUNGRY_MARKER, MARKER, STUBBORN_MARKER
from tests.e2e.test_pipeline_live import events_until_final, open_client, token, upload
from tests.pipeline.test_limits import shared_stream_pdf
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOFT_LIMIT, HARD_LIMIT = 3, 6  # seconds; a SLOW-PAPER takes 4 s in entity extraction, a plain one well under 1 s


@pytest.fixture
def limited_system(own_redis):
    """A system whose pipeline worker has tiny time limits."""
    with running_system(
        redis_url=own_redis, name="limits-",
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


async def test_papers_past_the_soft_or_hard_time_limit_fail_with_time_limit_exceeded(limited_system, alice):
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

    _paper, events = await process(limited_system, access, "fine.txt", SAMPLE_TEXT.encode())
    assert events[-1]["new_status"] == "completed", limited_system.log_tails()


MEMORY_LIMIT_MB = 400


@pytest.fixture
def memory_limited_system(own_redis):
    """A system whose pipeline processes may use 400 MiB of address space."""
    with running_system(
        redis_url=own_redis, name="memory-", PAPER_WORKER_MAX_MEMORY_MB=str(MEMORY_LIMIT_MB)
    ) as system:
        yield system


async def test_papers_over_the_memory_cap_fail_with_out_of_memory_and_real_papers_fit(
    memory_limited_system, alice, tmp_path
):
    system = memory_limited_system
    access = await token(system, *alice)

    _paper, events = await process(system, access, "hungry.txt", f"{HUNGRY_MARKER}\n{SAMPLE_TEXT}".encode())
    code, message, status = failure(events)
    assert (code, status) == ("out_of_memory", "failed"), system.log_tails()
    assert f"{MEMORY_LIMIT_MB} MiB" in message

    # pdfium aborts when an allocation fails: the crash is the extraction child's, not the worker's, so the
    # paper fails at once with out_of_memory instead of killing a worker on each of its deliveries.
    bomb = shared_stream_pdf(tmp_path / "page.pdf", pages=1, lines=1150, repeats=2000)
    _paper, events = await process(system, access, "page.pdf", bomb.read_bytes())
    code, message, status = failure(events)
    assert (code, status) == ("out_of_memory", "failed"), system.log_tails()
    statuses = [(e["old_status"], e["new_status"]) for e in events if e["event_type"] == "status_changed"]
    assert statuses == [("uploaded", "queued"), ("queued", "processing"), ("processing", "failed")], statuses
    assert message == (
        f"The PDF reader ran out of memory on this file (it needed more than the {MEMORY_LIMIT_MB} MiB allowed)."
    )

    _paper, events = await process(system, access, "DeBERTa.pdf", (papers_dir() / "DeBERTa.pdf").read_bytes())
    assert events[-1]["new_status"] == "completed", system.log_tails()
