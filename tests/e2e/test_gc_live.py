"""The real server (`python -m realtime.server`) freezes its start-up heap once it listens, leaves full collections
to quiet moments, and writes its garbage-collection pauses to REALTIME_GC_STATS_FILE when it stops."""

import json
import os

import pytest
import requests

from realtime import gctune
from tests.e2e.conftest import running_system

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_server_freezes_its_startup_heap_and_reports_its_pauses(tmp_path):
    path = tmp_path / "gc.json"
    with running_system(redis_url=os.environ["REDIS_URL"], name="gc-", only=("daphne",),
                        REALTIME_GC_STATS_FILE=str(path)) as system:
        assert requests.get(f"{system.base_url}/api/", timeout=10).status_code < 500
    written = json.loads(path.read_text())
    # Django, the modules and the application: tens of thousands of objects no collection walks again.
    assert written["frozen"] > 10_000, written
    assert written["generations"][2]["collections"] >= 1, "at least freeze_startup's own collection"
    assert all(gen["longest_ms"] >= 0 for gen in written["generations"])
    assert written["threshold"][2] == gctune.NEVER, "full collections wait for quiet moments (realtime.gctune)"
