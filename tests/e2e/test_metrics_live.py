"""/metrics on the real system: two Daphne processes and the Celery workers count in one directory, a scrape of
either Daphne adds them all up, the numbers move as papers are processed, an unauthorised scrape is refused, and
every metric the shipped Grafana dashboard queries is in a real scrape."""

import asyncio
import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import ARTIFACTS, running_system
from tests.e2e.test_pipeline_live import events_until_final, request, token, upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
TOKEN = "e2e-metrics-token-0123456789-abcdefghijkl"
PASSWORD = "pw-metrics-123"
STEPS = ("text_extraction", "entity_extraction", "relationship_extraction")


class Scrape:
    """One scrape, parsed: every sample's value by (name, labels)."""

    def __init__(self, text: str):
        self.text = text
        self.samples: dict[tuple[str, frozenset], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """A sample's value (0 when the series does not exist yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def scrape(base_url: str, **headers: str) -> Scrape:
    response = requests.get(f"{base_url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return Scrape(response.text)


def scrape_until(base_url: str, condition, timeout: float = 30) -> Scrape:
    """Scrape until condition holds: a gauge is a state to look at (a close is counted when the server saw it)."""
    deadline = time.monotonic() + timeout
    while True:
        current = scrape(base_url)
        if condition(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


def dashboard_metrics() -> set[str]:
    """The sample names the dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]
    assert exprs, "the dashboard queries something"
    return {name for expr in exprs for name in re.findall(r"\bpaperpipeline_[a-z_]+", expr)}


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password=PASSWORD)


async def test_metrics_move_as_papers_are_processed_and_add_up_over_every_process(alice, own_redis):
    with running_system(redis_url=own_redis, name="metrics-", daphnes=2, METRICS_TOKEN=TOKEN) as system:
        scraped_url, other_url = system.base_urls
        # Refused: through a proxy without the token, with a wrong token; let in with the right one from anywhere.
        proxied = {"X-Forwarded-For": "203.0.113.7"}
        refused = await asyncio.to_thread(requests.get, f"{scraped_url}/metrics", headers=proxied, timeout=10)
        assert refused.status_code == 401 and "paperpipeline_" not in refused.text, refused.text
        wrong = await asyncio.to_thread(requests.get, f"{scraped_url}/metrics",
                                        headers={"Authorization": f"Bearer {TOKEN[:-1]}x"}, timeout=10)
        assert wrong.status_code == 401
        before = await asyncio.to_thread(scrape, scraped_url, Authorization=f"Bearer {TOKEN}", **proxied)

        # A connection on the other Daphne process: counted in the scrape of this one.
        ws = await connect(system.ws_urls[1])
        waiting = await asyncio.to_thread(
            scrape_until, scraped_url, lambda s: s.value("paperpipeline_ws_connections", state="unauthenticated") >= 1)
        assert waiting.value("paperpipeline_ws_connections", state="unauthenticated") == 1, waiting.text
        access = await token(system, "alice", PASSWORD)
        assert (await request(ws, {"type": "authenticate", "token": access, "id": "a"}))["type"] == "authenticated"
        assert (await request(ws, {"type": "subscribe", "topic": "papers", "id": "t"}))["type"] == "subscribed"
        assert (await request(ws, {"type": "bogus", "id": "b"}))["code"] == "unknown_type"
        during = await asyncio.to_thread(scrape, scraped_url)
        assert during.value("paperpipeline_ws_connections", state="authenticated") == 1, during.text
        assert during.value("paperpipeline_ws_connections", state="unauthenticated") == 0
        assert during.value("paperpipeline_ws_subscriptions", kind="papers") == 1
        assert during.value("paperpipeline_ws_errors_total", code="unknown_type") == 1

        good = await upload(system, access, "metrics.txt", SAMPLE_TEXT.encode())
        good_events = await events_until_final(ws, good["id"])
        assert good_events[-1]["new_status"] == "completed", system.log_tails()
        bad = await upload(system, access, "broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40)
        bad_events = await events_until_final(ws, bad["id"])
        assert bad_events[-1]["new_status"] == "failed", bad_events
        after = await asyncio.to_thread(scrape, other_url)  # either Daphne process: the same sums
        (ARTIFACTS / "metrics-scrape.txt").write_text(after.text)
        print("a scrape after two papers:\n" + "\n".join(
            line for line in after.text.splitlines() if line.startswith("paperpipeline_") and "_bucket" not in line))

        received = Counter(event["event_type"] for event in good_events + bad_events)
        for event_type, count in received.items():
            published = after.value("paperpipeline_events_published_total", event_type=event_type) - \
                before.value("paperpipeline_events_published_total", event_type=event_type)
            assert published >= count, (event_type, published, count)
        # The upload's "queued" was published by Daphne, the rest by the worker's pool process: all in one sum.
        assert received["status_changed"] >= 4 and received["progress_updated"] >= 3, received
        delivered = after.value("paperpipeline_ws_deliveries_total") - before.value("paperpipeline_ws_deliveries_total")
        assert delivered >= sum(received.values()), (delivered, received)
        messages = after.value("paperpipeline_fanout_messages_total") - \
            before.value("paperpipeline_fanout_messages_total")
        batches = after.value("paperpipeline_ws_delivery_latency_seconds_count") - \
            before.value("paperpipeline_ws_delivery_latency_seconds_count")  # one observation per batch
        assert messages >= batches >= 1, (messages, batches)
        within = after.value("paperpipeline_ws_delivery_latency_seconds_bucket", le="5.0") - \
            before.value("paperpipeline_ws_delivery_latency_seconds_bucket", le="5.0")
        assert within == batches, (within, batches)  # one host, one clock: every batch within 5 s of its publish
        for step in STEPS:
            timed = "paperpipeline_pipeline_step_duration_seconds_count"
            assert after.value(timed, step=step) - before.value(timed, step=step) == 1, step  # the good paper's
            assert after.value("paperpipeline_pipeline_step_duration_seconds_sum", step=step) > 0
        assert after.value("paperpipeline_papers_completed_total") - \
            before.value("paperpipeline_papers_completed_total") == 1
        assert after.value("paperpipeline_papers_failed_total", error_code="unreadable_pdf") - \
            before.value("paperpipeline_papers_failed_total", error_code="unreadable_pdf") == 1
        for status, added in (("completed", 1), ("failed", 1), ("processing", 0), ("queued", 0)):
            change = after.value("paperpipeline_papers", status=status) - before.value("paperpipeline_papers",
                                                                                        status=status)
            assert change == added, (status, change)
        assert after.value("paperpipeline_workers_alive") == 2  # the pipeline worker and the system worker
        assert after.value("paperpipeline_queue_depth", queue="papers") == 0
        assert after.value("paperpipeline_metrics_source_up", source="database") == 1
        assert after.value("paperpipeline_metrics_source_up", source="broker") == 1

        # The client leaves: its close is counted by code, and nothing is open any more.
        closes = after.value("paperpipeline_ws_closes_total", code="1000", reason="none")
        await ws.close()
        closed = await asyncio.to_thread(
            scrape_until, scraped_url,
            lambda s: s.value("paperpipeline_ws_closes_total", code="1000", reason="none") > closes)
        assert closed.value("paperpipeline_ws_closes_total", code="1000", reason="none") == closes + 1, closed.text
        assert closed.value("paperpipeline_ws_connections", state="authenticated") == 0
        assert closed.value("paperpipeline_ws_subscriptions", kind="papers") == 0

        # Every metric the shipped dashboard queries exists in a real scrape.
        missing = dashboard_metrics() - closed.names()
        assert not missing, sorted(missing)

        crashed = {name: p.returncode for name, p in system.processes.items() if p.poll() is not None}
        assert crashed == {}, system.log_tails()
