"""A paper queued while no pipeline worker runs, then Redis restarts: it completes, once, whether its task survived
(append-only file) or was lost (the sweep at worker start sends it again)."""

import time
from urllib.parse import urlsplit

import pytest
import requests

from paperpipeline.redis_server import start_redis_server
from papers.models import Paper, PaperEvent
from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw-alice-123")


def wait_for_status(system, access: str, paper_id: str, wanted: str, timeout: float = 120) -> dict:
    """Poll the API until the paper reaches a status (the test watches from outside, as a user would)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        paper = requests.get(
            f"{system.base_url}/api/papers/{paper_id}/", headers={"Authorization": f"Bearer {access}"}, timeout=10
        ).json()
        if paper["status"] == wanted:
            return paper
        time.sleep(0.5)
    raise AssertionError(f"paper still {paper['status']}, not {wanted}:\n{system.log_tails()}")


@pytest.mark.parametrize(
    "appendonly, resend_after", [(True, "600"), (False, "1")], ids=["kept-by-append-only-file", "lost-and-resent"]
)
def test_a_paper_queued_across_a_redis_restart_completes_once(tmp_path, alice, appendonly, resend_after):
    workdir = tmp_path / "redis"
    redis_process, url = start_redis_server(workdir=workdir, appendonly=appendonly)
    try:
        with running_system(redis_url=url, name="lostq-", PAPER_QUEUED_RESEND_AFTER=resend_after) as system:
            worker = system.processes["lostq-worker"]
            worker.terminate()  # no pipeline worker: the paper's task waits in Redis
            worker.wait(timeout=30)
            access = requests.post(
                f"{system.base_url}/api/token/", json={"username": "alice", "password": "pw-alice-123"}, timeout=10
            ).json()["access"]
            response = requests.post(
                f"{system.base_url}/api/papers/", files={"file": ("p.txt", SAMPLE_TEXT.encode())},
                headers={"Authorization": f"Bearer {access}"}, timeout=30,
            )
            assert response.status_code == 201, response.text
            paper_id = response.json()["id"]

            address = urlsplit(url)
            redis_process.terminate()
            redis_process.wait(timeout=10)
            redis_process, _ = start_redis_server(
                workdir=workdir, port=address.port, password=address.password, appendonly=appendonly
            )
            system.start("lostq-worker", *system.commands["lostq-worker"])

            wait_for_status(system, access, paper_id, "completed")
            assert Paper.objects.get(pk=paper_id).attempts == 1
            events = PaperEvent.objects.filter(paper_id=paper_id, event_type="status_changed").order_by("seq")
            statuses = [event.payload["new_status"] for event in events]
            assert statuses == ["queued", "processing", "completed"], system.log_tails()
    finally:
        redis_process.terminate()
        redis_process.wait(timeout=10)
