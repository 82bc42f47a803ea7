"""/metrics: who may scrape it, what a scrape holds, and the counting done per fan-out batch (real Redis and
database; the multiprocess files in a directory of the test's own)."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
from asgiref.testing import ApplicationCommunicator
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from paperpipeline import metrics, scrape
from realtime import connlog
from realtime.broadcast import broadcast_control, broadcast_event
from realtime.fanout import Fanout
from tests.paperpipeline.test_keys import ROOT, django_setup
from tests.realtime.test_consumer import TIMEOUT
from tests.realtime.test_fanout import Recorder

TOKEN = "metrics-token-for-the-tests-0123456789-abcdef"


async def never_reached(scope, receive, send):
    raise AssertionError("/metrics is answered before Django")


APP = scrape.with_metrics_endpoint(never_reached)


async def call(*, client: str | None = "127.0.0.1", method: str = "GET", headers=(), path: str = "/metrics",
               app=APP) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app, from a given peer address."""
    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "scheme": "http", "headers": [(b"host", b"10.0.0.5:8000"), *headers],
             "client": [client, 50000] if client else None, "server": ["10.0.0.5", 8000]}
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(TIMEOUT)
    body = await communicator.receive_output(TIMEOUT)
    await communicator.wait(TIMEOUT)
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]


def bearer(token: str) -> tuple[bytes, bytes]:
    return b"authorization", f"Bearer {token}".encode()


# --- who may scrape ---

def scope_from(client: str | None, *headers: tuple[bytes, bytes]) -> dict:
    return {"client": [client, 1234] if client else None, "headers": list(headers)}


@pytest.mark.parametrize("client", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_scrape_without_a_token(settings, client):
    settings.METRICS_TOKEN = ""
    assert scrape.refusal(scope_from(client)) is None


@pytest.mark.parametrize("client", ["10.0.0.7", "192.168.1.2", "2001:db8::1", None, "not-an-address"])
def test_without_a_token_every_other_address_is_refused(settings, client):
    settings.METRICS_TOKEN = ""
    assert scrape.refusal(scope_from(client)) == 403
    assert scrape.refusal(scope_from(client, bearer(TOKEN))) == 401, "no token is configured: none is right"


@pytest.mark.parametrize("header", [b"x-forwarded-for", b"x-real-ip", b"forwarded"])
def test_a_request_through_a_proxy_is_not_local(settings, header):
    settings.METRICS_TOKEN = ""
    assert scrape.refusal(scope_from("127.0.0.1", (header, b"203.0.113.9"))) == 403
    settings.METRICS_TOKEN = TOKEN
    assert scrape.refusal(scope_from("127.0.0.1", (header, b"203.0.113.9"))) == 401
    assert scrape.refusal(scope_from("127.0.0.1", (header, b"203.0.113.9"), bearer(TOKEN))) is None


def test_the_token_lets_any_address_in_and_a_wrong_one_is_refused_even_from_loopback(settings):
    settings.METRICS_TOKEN = TOKEN
    assert scrape.refusal(scope_from("10.0.0.7", bearer(TOKEN))) is None
    assert scrape.refusal(scope_from("10.0.0.7", (b"authorization", f"bearer  {TOKEN} ".encode()))) is None
    assert scrape.refusal(scope_from("10.0.0.7")) == 401
    for wrong in (TOKEN[:-1], TOKEN + "x", "", f"Basic {TOKEN}"):
        header = (b"authorization", wrong.encode() if wrong.startswith("Basic") else f"Bearer {wrong}".encode())
        assert scrape.refusal(scope_from("10.0.0.7", header)) == 401, wrong
        assert scrape.refusal(scope_from("127.0.0.1", header)) == 401, wrong
    assert scrape.refusal(scope_from("127.0.0.1")) is None, "loopback needs no token"


async def test_refusals_answer_before_django_with_a_json_reason(settings):
    settings.METRICS_TOKEN = TOKEN
    status, headers, body = await call(client="10.0.0.7")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert json.loads(body)["code"] == "not_authenticated" and b"paperpipeline_" not in body
    settings.METRICS_TOKEN = ""
    status, headers, body = await call(client="10.0.0.7", headers=[bearer(TOKEN)])
    assert status == 401
    status, headers, body = await call(client="10.0.0.7")
    assert status == 403 and json.loads(body)["code"] == "permission_denied" and "www-authenticate" not in headers
    status, headers, _ = await call(method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"


async def test_other_paths_go_on_to_the_application():
    reached = []

    async def inner(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    status, _, _ = await call(path="/metrics/", app=scrape.with_metrics_endpoint(inner))
    assert status == 204 and reached == ["/metrics/"]


@pytest.mark.parametrize("token", ["short", "x" * 31, "spaces in a token that is long enough 0123456789"])
def test_a_weak_or_malformed_token_is_refused_at_start(tmp_path, token):
    result = django_setup(tmp_path, METRICS_TOKEN=token)
    assert result.returncode != 0 and "METRICS_TOKEN must be at least 32" in result.stderr, result.stderr
    assert token not in result.stderr.replace("METRICS_TOKEN must", "")  # never echoed
    assert django_setup(tmp_path, METRICS_TOKEN=TOKEN).returncode == 0


# --- what a scrape holds ---

def families(body: bytes) -> dict[str, dict[tuple, float]]:
    """A scrape parsed: each metric family's samples by (sample name, sorted labels)."""
    parsed = {}
    for family in text_string_to_metric_families(body.decode()):
        parsed[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return parsed


@pytest.mark.django_db(transaction=True)
async def test_a_scrape_reads_papers_queues_and_workers_fresh(settings, make_paper_for_metrics):
    status, headers, body = await call()
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain") and headers["cache-control"] == "no-store"
    scraped = families(body)
    up = scraped["paperpipeline_metrics_source_up"]
    assert up[("paperpipeline_metrics_source_up", (("source", "database"),))] == 1
    assert up[("paperpipeline_metrics_source_up", (("source", "broker"),))] == 1
    papers = scraped["paperpipeline_papers"]
    assert papers[("paperpipeline_papers", (("status", "failed"),))] == 2
    assert papers[("paperpipeline_papers", (("status", "completed"),))] == 0
    queues = {labels[0][1] for _, labels in scraped["paperpipeline_queue_depth"]}
    assert queues == {"papers", "system"}
    assert "paperpipeline_workers_alive" in scraped
    # Counted metrics are there before anything happened (zero), so a dashboard has every series from the start.
    assert "paperpipeline_ws_delivery_latency_seconds" in scraped and "paperpipeline_fanout_messages" in scraped


@pytest.fixture
def make_paper_for_metrics(django_user_model):
    from papers.models import Paper, PaperStatus

    owner = django_user_model.objects.create_user(username="counted", password="pw-counted-123")
    for _ in range(2):
        Paper.objects.create(owner=owner, title="t", original_filename="t.txt", status=PaperStatus.FAILED)


async def test_a_source_that_does_not_answer_is_left_out_and_said_so(settings):
    settings.BROKER_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.HEALTH_CHECK_TIMEOUT = 1
    body = await scrape.scrape()
    scraped = families(body)
    assert scraped["paperpipeline_metrics_source_up"][("paperpipeline_metrics_source_up", (("source", "broker"),))] == 0
    assert "paperpipeline_queue_depth" not in scraped and "paperpipeline_workers_alive" not in scraped


# --- counted per batch, and by kind ---

def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def fresh_fanout():
    instance = Fanout()
    yield instance
    await instance.aclose()


async def test_the_fanout_counts_a_batch_its_deliveries_and_latency_and_members_see_no_publish_time(fresh_fanout):
    members = [Recorder() for _ in range(3)]
    for member in members:
        await fresh_fanout.join("metrics.batch", member)
    before = {name: sample(name) for name in (
        "paperpipeline_ws_deliveries_total", "paperpipeline_fanout_messages_total",
        "paperpipeline_ws_delivery_latency_seconds_count",)}
    await broadcast_control("metrics.batch", {"type": "test.ping"})
    async with asyncio.timeout(TIMEOUT):
        # The reader counts the batch in the same step that hands it out (no await in between), so it is
        # counted by the time this task wakes.
        await asyncio.gather(*(member.arrived.wait() for member in members))
    assert all(member.messages == [{"type": "test.ping"}] for member in members)
    assert sample("paperpipeline_ws_deliveries_total") - before["paperpipeline_ws_deliveries_total"] == 3
    assert sample("paperpipeline_fanout_messages_total") - before["paperpipeline_fanout_messages_total"] == 1
    latency = "paperpipeline_ws_delivery_latency_seconds_count"
    assert sample(latency) - before[latency] == 1
    assert sample("paperpipeline_ws_delivery_latency_seconds_bucket", le="+Inf") >= 1


async def test_subscriptions_are_counted_by_kind_once_per_member(fresh_fanout):
    member = Recorder()
    paper = sample("paperpipeline_ws_subscriptions", kind="paper")
    papers = sample("paperpipeline_ws_subscriptions", kind="papers")
    await fresh_fanout.join("paper.0123", member)
    await fresh_fanout.join("paper.0123", member)  # subscribing again replaces, it does not add
    await fresh_fanout.join("user.7", member)
    await fresh_fanout.join("conn.user.7", member)  # a control group: no subscription
    assert sample("paperpipeline_ws_subscriptions", kind="paper") == paper + 1
    assert sample("paperpipeline_ws_subscriptions", kind="papers") == papers + 1
    await fresh_fanout.leave("paper.0123", member)
    await fresh_fanout.leave("paper.0123", member)
    await fresh_fanout.leave("user.7", member)
    assert sample("paperpipeline_ws_subscriptions", kind="paper") == paper
    assert sample("paperpipeline_ws_subscriptions", kind="papers") == papers


def test_events_published_by_type_and_failures(settings):
    settings.REALTIME_REDIS_URL = "redis://127.0.0.1:1/0"  # publishing fails: counted, never raised
    from realtime import bus

    bus._client = None
    before = sample("paperpipeline_events_published_total", event_type="system_status")
    failures = sample("paperpipeline_bus_publish_failures_total")
    try:
        broadcast_event({"event_type": "system_status", "timestamp": "2026-01-01T00:00:00Z"})
    finally:
        bus._client = None
    assert sample("paperpipeline_events_published_total", event_type="system_status") == before + 1
    assert sample("paperpipeline_bus_publish_failures_total") == failures + 1


def test_closes_are_counted_by_a_bounded_code_and_the_reason_the_server_closed_them():
    before = sample("paperpipeline_ws_closes_total", code="1006", reason="too_slow")
    connlog.closed(1006, "too_slow")  # the server closed it with 4011; the client never answered the close
    assert sample("paperpipeline_ws_closes_total", code="1006", reason="too_slow") == before + 1
    before = sample("paperpipeline_ws_closes_total", code="other", reason="none")
    connlog.closed(4567, None)
    assert sample("paperpipeline_ws_closes_total", code="other", reason="none") == before + 1
    assert [connlog.close_code_label(code) for code in (1000, 1006, 4008, 4567, 3000, None)] == \
        ["1000", "1006", "4008", "other", "other", "none"]
    hits = sample("paperpipeline_ws_rate_limit_hits_total", limit="rate_limited")
    connlog.error("rate_limited", None)
    connlog.error("not_found", None)
    assert sample("paperpipeline_ws_rate_limit_hits_total", limit="rate_limited") == hits + 1
    assert sample("paperpipeline_ws_rate_limit_hits_total", limit="not_found") == 0


# --- several processes ---

COUNT_IN_A_PROCESS = """
import os, sys, time
from paperpipeline import metrics
metrics.WS_DELIVERIES.inc(int(sys.argv[1]))
metrics.WS_CONNECTIONS.labels("authenticated").set(int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()  # stays alive until told
"""


def test_processes_add_up_and_a_dead_one_stops_counting_as_open(tmp_path, settings):
    """Two processes count in multiprocess mode; a scrape adds both up; once one is killed its open connections
    are dropped at the next scrape while its deliveries stay counted."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    processes = [subprocess.Popen([sys.executable, "-c", COUNT_IN_A_PROCESS, str(n)], cwd=ROOT, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in (2, 5)]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        scraped = families(render_in_a_process(env))
        assert scraped["paperpipeline_ws_deliveries"][("paperpipeline_ws_deliveries_total", ())] == 7
        open_ = ("paperpipeline_ws_connections", (("state", "authenticated"),))
        assert scraped["paperpipeline_ws_connections"][open_] == 7
        processes[1].kill()
        processes[1].wait()
        scraped = families(render_in_a_process(env))
        assert scraped["paperpipeline_ws_connections"][open_] == 2, "the killed process's connections are gone"
        assert scraped["paperpipeline_ws_deliveries"][("paperpipeline_ws_deliveries_total", ())] == 7
    finally:
        for process in processes:
            process.kill()
            process.wait()


def render_in_a_process(env: dict[str, str]) -> bytes:
    """What a scrape renders, in a process of its own with the directory set (as a Daphne process has it)."""
    script = ("import django; django.setup(); import sys; from paperpipeline import scrape; "
              "sys.stdout.buffer.write(scrape.exposition(scrape.FreshFigures(None, None)))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60,
                            env={**env, "DJANGO_SETTINGS_MODULE": "paperpipeline.settings"})
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_the_launcher_empties_the_metrics_directory_of_a_previous_run(tmp_path):
    from paperpipeline.launcher import reset_metrics_dir

    directory = tmp_path / "metrics"
    reset_metrics_dir(directory)
    (directory / "counter_123.db").write_bytes(b"old")
    (directory / "README").write_text("the operator's")
    reset_metrics_dir(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["README"]
    assert metrics.MULTIPROCESS_DIR is None, "the test process itself counts in memory"


# --- the shipped dashboard ---

def test_every_metric_the_dashboard_queries_is_one_the_project_defines():
    """(tests/e2e/test_metrics_live.py checks the same names against a real scrape.)"""
    from tests.e2e.test_metrics_live import dashboard_metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    defined = {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("paperpipeline_")
               for suffix in suffixes.get(family.type, ())}
    defined |= {family.name for family in scrape.FreshFigures({"queued": 1}, {"queues": {}, "workers": 0}).collect()}
    missing = dashboard_metrics() - defined
    assert not missing, sorted(missing)
    assert {"paperpipeline_ws_connections", "paperpipeline_papers", "paperpipeline_queue_depth",
            "paperpipeline_ws_delivery_latency_seconds_bucket"} <= dashboard_metrics()


# --- a connection's life, through the full ASGI stack (real Redis) ---

@pytest.mark.django_db(transaction=True)
async def test_a_connection_is_counted_open_subscribed_and_resumed_then_closed(user):
    from papers.models import PaperStatus
    from tests.realtime.test_consumer import connected, make_paper, send, set_status

    paper = await make_paper(user)
    await set_status(paper.pk, PaperStatus.QUEUED)  # one logged event to replay
    open_ = sample("paperpipeline_ws_connections", state="authenticated")
    papers = sample("paperpipeline_ws_subscriptions", kind="paper")
    replayed = sample("paperpipeline_ws_replayed_events_total")
    closes = sample("paperpipeline_ws_closes_total", code="1000", reason="none")
    ws = await connected(user)
    assert sample("paperpipeline_ws_connections", state="authenticated") == open_ + 1
    reply = await send(ws, {"type": "subscribe", "paper_id": str(paper.pk), "since": 0})
    assert reply["recovery"]["replayed"] == 1, reply
    assert sample("paperpipeline_ws_replayed_events_total") == replayed + 1
    assert sample("paperpipeline_ws_subscriptions", kind="paper") == papers + 1
    await ws.disconnect(code=1000)
    assert sample("paperpipeline_ws_connections", state="authenticated") == open_
    assert sample("paperpipeline_ws_subscriptions", kind="paper") == papers
    assert sample("paperpipeline_ws_closes_total", code="1000", reason="none") == closes + 1
