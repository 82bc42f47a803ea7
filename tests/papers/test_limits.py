"""Time and memory limits of the pipeline task: past any of them the paper fails with a clear error event."""

import os
import resource
import signal
import threading

import billiard
import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from papers import services, tasks
from papers.models import Paper
from tests.conftest import SAMPLE_TEXT
from tests.e2e.slow_extractor import MARKER as SLOW_MARKER
from tests.e2e.slow_extractor import extract_entities as slow_extract_entities
from tests.papers.test_services import log, queued_paper

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_celery_send")]


def error_event(paper: Paper) -> dict:
    """The paper's one error event."""
    (error,) = [event for event in log(paper) if event["event_type"] == "error"]
    return error


@pytest.fixture
def soft_limit_in():
    """Arm a soft time limit: SIGUSR1 from another thread raises SoftTimeLimitExceeded, as Celery's pool does."""

    def raise_soft_limit(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGUSR1, raise_soft_limit)
    timers: list[threading.Timer] = []

    def arm(seconds: float) -> None:
        timers.append(threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGUSR1)))
        timers[-1].start()

    yield arm
    for timer in timers:
        timer.cancel()
        timer.join()
    signal.signal(signal.SIGUSR1, previous)


ARMED: list = []  # the soft_limit_in arm of the running test, for the extractor below


def slow_extract_entities_armed(text: str, *, on_progress=None):
    """The slow extractor (4 s for a marked paper), with the soft limit armed as it starts: the limit then falls
    in the entity step however long text extraction took on a loaded machine."""
    ARMED[-1](0.5)
    return slow_extract_entities(text, on_progress=on_progress)


def test_a_paper_past_the_soft_time_limit_fails_with_time_limit_exceeded(user, settings, soft_limit_in):
    settings.PAPER_ENTITY_EXTRACTOR = f"{__name__}.slow_extract_entities_armed"
    settings.PAPER_TASK_SOFT_TIME_LIMIT = 0.5
    paper = queued_paper(user, f"{SLOW_MARKER}\n{SAMPLE_TEXT}".encode(), "p.txt")
    ARMED[:] = [soft_limit_in]
    tasks.process_paper.apply(args=[str(paper.pk)], task_id=paper.task_id)  # the task path, in this process
    paper.refresh_from_db()
    assert (paper.status, paper.error_code) == ("failed", "time_limit_exceeded")
    error = error_event(paper)
    assert error["error_code"] == "time_limit_exceeded"
    assert error["details"] == {"step": "entity_extraction", "task_id": paper.task_id}
    assert error["error_message"] == (
        "Processing took longer than the 0.5 s time limit; stopped during entity extraction."
    )
    assert log(paper)[-1]["new_status"] == "failed"


def test_a_hard_time_limit_kill_fails_the_paper_from_the_worker(user, settings):
    settings.PAPER_TASK_TIME_LIMIT = 360
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services._paper_start(paper_id=paper.pk, task_id=paper.task_id)  # the pool child started, then was killed
    # What Celery's main process calls once the pool child running the task was killed at the hard limit.
    tasks.process_paper.on_failure(TimeLimitExceeded(360), paper.task_id, (str(paper.pk),), {}, None)
    paper.refresh_from_db()
    assert (paper.status, paper.error_code) == ("failed", "time_limit_exceeded")
    assert error_event(paper)["error_message"] == (
        "Processing took longer than the 360 s time limit; stopped during text extraction."
    )
    # Celery may report the same timeout twice; the paper fails once.
    tasks.process_paper.on_failure(TimeLimitExceeded(360), paper.task_id, (str(paper.pk),), {}, None)
    assert len([e for e in log(paper) if e["event_type"] == "error"]) == 1


def test_the_pipeline_task_has_soft_and_hard_time_limits_from_the_settings(settings):
    assert tasks.process_paper.soft_time_limit == settings.PAPER_TASK_SOFT_TIME_LIMIT == 300
    assert tasks.process_paper.time_limit == settings.PAPER_TASK_TIME_LIMIT == 360


def test_running_out_of_memory_fails_the_paper_with_out_of_memory(user, settings):
    settings.PAPER_ENTITY_EXTRACTOR = "tests.papers.test_limits.hungry_extractor"
    paper = queued_paper(user, SAMPLE_TEXT.encode(), "p.txt")
    services.paper_process(paper_id=paper.pk, task_id=paper.task_id)
    paper.refresh_from_db()
    assert (paper.status, paper.error_code) == ("failed", "out_of_memory")
    assert error_event(paper)["details"]["step"] == "entity_extraction"
    assert f"{settings.PAPER_WORKER_MAX_MEMORY_MB} MiB" in paper.error_message


def hungry_extractor(text, *, on_progress=None):
    raise MemoryError()


def _allocate_in_pool_child(size: int, queue) -> None:
    """In a child process (as in a prefork pool): apply the worker's limit, then try to allocate."""
    tasks.limit_pool_child_memory()
    try:
        bytes(size)  # calloc'd: costs address space, not resident memory
        queue.put("allocated")
    except MemoryError:
        queue.put("MemoryError")


def test_pool_children_get_an_address_space_limit_and_the_main_process_does_not(settings):
    settings.PAPER_WORKER_MAX_MEMORY_MB = 1024
    before = resource.getrlimit(resource.RLIMIT_AS)
    tasks.limit_pool_child_memory()  # here, in the main process: nothing changes
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    context = billiard.get_context("fork")  # the process library of Celery's prefork pool
    queue = context.Queue()
    child = context.Process(target=_allocate_in_pool_child, args=(2 * 1024**3, queue))
    child.start()
    child.join(timeout=30)
    assert queue.get(timeout=5) == "MemoryError"
