"""Server-sent events on a real Daphne with a real worker, read by a real HTTP client: resume with Last-Event-ID
after a cut mid-paper gets every event exactly once, another user's paper is refused, heartbeats arrive."""

import pytest
import requests

from tests.conftest import SAMPLE_TEXT
from tests.e2e.conftest import running_system
from tests.e2e.slow_extractor import MARKER
from tests.e2e.sse_client import SseClient
from tests.schemas import assert_wire_event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAPER_TIMEOUT = 120


@pytest.fixture
def alice(django_user_model):
    django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    return ("alice", "pw-alice-123")


@pytest.fixture
def bob(django_user_model):
    django_user_model.objects.create_user(username="bob", password="pw-bob-12345")
    return ("bob", "pw-bob-12345")


def token(system, username: str, password: str) -> str:
    response = requests.post(f"{system.base_url}/api/token/", json={"username": username, "password": password},
                             timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access"]


def upload(system, access: str, text: str) -> dict:
    response = requests.post(f"{system.base_url}/api/papers/", files={"file": ("slow.txt", text.encode())},
                             headers={"Authorization": f"Bearer {access}"}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def bearer(access: str) -> dict:
    return {"Authorization": f"Bearer {access}"}


def paper_events(stream: SseClient, paper_id: str, until) -> list[dict]:
    """This paper's events, in arrival order, up to and including the first one `until` accepts."""
    received = []
    for message in stream.events():
        if message.data.get("paper_id") != paper_id or "event_type" not in message.data:
            continue
        assert_wire_event(message.data)
        received.append(message.data)
        if until(message.data):
            return received


def final(event: dict) -> bool:
    return event["event_type"] == "status_changed" and event["new_status"] in ("completed", "failed")


def logged(system, access: str, paper_id: str) -> list[dict]:
    response = requests.get(f"{system.base_url}/api/papers/{paper_id}/events/", headers=bearer(access), timeout=10)
    return response.json()["events"]


def test_a_paper_stream_cut_mid_paper_resumes_from_last_event_id_with_every_event_once(live_system, alice):
    access = token(live_system, *alice)
    paper = upload(live_system, access, MARKER + "\n" + SAMPLE_TEXT)
    url = f"{live_system.base_url}/api/papers/{paper['id']}/stream/"
    first = SseClient(url + "?since=0", headers=bearer(access), timeout=PAPER_TIMEOUT)
    assert first.status == 200
    assert first.response.headers["Content-Type"].startswith("text/event-stream")
    reply = next(first.events())
    assert reply.data["type"] == "subscribed" and reply.data["paper_id"] == paper["id"]
    assert reply.data["recovery"]["since"] == 0
    received = paper_events(first, paper["id"], lambda e: e.get("step") == "entity_extraction")
    last_id = first.last_id
    assert last_id == str(received[-1]["seq"]), "id: is the event's seq"
    first.close()  # cut mid-paper: the slow extractor is still running

    resumed = SseClient(url, headers={**bearer(access), "Last-Event-ID": last_id}, timeout=PAPER_TIMEOUT)
    reply = next(resumed.events())
    assert reply.data["recovery"]["complete"] is True and reply.data["recovery"]["since"] == int(last_id)
    received += paper_events(resumed, paper["id"], final)
    resumed.close()
    assert [e["seq"] for e in received] == list(range(1, len(received) + 1)), "every event exactly once"
    assert received[-1]["new_status"] == "completed"
    assert received == logged(live_system, access, paper["id"])


def test_the_all_papers_stream_resumes_from_its_per_paper_position(live_system, alice):
    access = token(live_system, *alice)
    url = f"{live_system.base_url}/api/papers/stream/"
    first = SseClient(url, headers=bearer(access), timeout=PAPER_TIMEOUT)
    reply = next(first.events())
    assert reply.data == {"type": "subscribed", "topic": "papers", "event_types": None}
    paper = upload(live_system, access, MARKER + "\n" + SAMPLE_TEXT)
    received = paper_events(first, paper["id"], lambda e: e.get("step") == "entity_extraction")
    last_id = first.last_id
    first.close()

    resumed = SseClient(url, headers={**bearer(access), "Last-Event-ID": last_id}, timeout=PAPER_TIMEOUT)
    reply = next(resumed.events()).data  # the named paper first: its snapshot, recovery and replay
    assert reply["paper_id"] == paper["id"] and reply["recovery"]["complete"] is True
    assert reply["recovery"]["since"] == received[-1]["seq"]
    topic_replies = []
    for message in resumed.events():
        if message.data.get("type") == "subscribed":
            topic_replies.append(message.data)
        elif message.data.get("paper_id") == paper["id"]:
            assert_wire_event(message.data)
            received.append(message.data)
            if final(message.data):
                break
    resumed.close()
    assert topic_replies == [{"type": "subscribed", "topic": "papers", "event_types": None}]
    assert [e["seq"] for e in received] == list(range(1, len(received) + 1)), "every event exactly once"
    assert received == logged(live_system, access, paper["id"])


def test_another_users_paper_is_refused_like_a_missing_one(live_system, alice, bob):
    access = token(live_system, *alice)
    paper = upload(live_system, access, SAMPLE_TEXT)
    other = token(live_system, *bob)
    refused = requests.get(f"{live_system.base_url}/api/papers/{paper['id']}/stream/", headers=bearer(other),
                           timeout=10)
    missing = requests.get(f"{live_system.base_url}/api/papers/00000000-0000-4000-8000-000000000000/stream/",
                           headers=bearer(other), timeout=10)
    api = requests.get(f"{live_system.base_url}/api/papers/{paper['id']}/", headers=bearer(other), timeout=10)
    assert refused.status_code == missing.status_code == api.status_code == 404
    assert refused.json() == missing.json() == {"detail": "No such paper.", "code": "not_found"}
    anonymous = requests.get(f"{live_system.base_url}/api/papers/stream/", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    forged = requests.get(f"{live_system.base_url}/api/papers/stream/", headers=bearer("not-a-token"), timeout=10)
    assert forged.status_code == 401 and forged.json()["code"] == "authentication_failed"
    hostile = requests.get(f"{live_system.base_url}/api/papers/{paper['id']}/stream/",
                           headers={**bearer(access), "Last-Event-ID": "9" * 40}, timeout=10)
    assert hostile.status_code == 400 and hostile.json()["code"] == "invalid_since"


def test_the_all_papers_stream_of_bob_carries_none_of_alices_events(live_system, alice, bob):
    watcher = SseClient(f"{live_system.base_url}/api/papers/stream/", headers=bearer(token(live_system, *bob)))
    assert next(watcher.events()).data["topic"] == "papers"
    access = token(live_system, *alice)
    upload(live_system, access, SAMPLE_TEXT)
    mine = upload(live_system, token(live_system, *bob), SAMPLE_TEXT)
    seen = paper_events(watcher, mine["id"], final)  # bob's own paper, uploaded after alice's
    watcher.close()
    assert {e["paper_id"] for e in seen} == {mine["id"]}


def test_heartbeat_comments_arrive_at_the_ping_interval(live_system, alice):
    stream = SseClient(f"{live_system.base_url}/api/papers/stream/?system=1",
                       headers=bearer(token(live_system, *alice)), timeout=20)
    kinds = []
    while kinds.count("ping") < 2:  # WS_PING_INTERVAL is 1 s on the live system
        message = stream.next()
        kinds.append(message.comment or message.data.get("type") or message.data.get("event_type"))
    stream.close()
    assert kinds[0] == "subscribed"


def _change_password(username: str) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)
    user.set_password("a-new-pw-456")
    user.save()


def stream_ends_with(stream: SseClient) -> dict:
    """The last data message before the stream ended (heartbeats and system events skipped)."""
    last = None
    try:
        for message in stream.events():
            last = message.data
    except StopIteration:
        pass
    except RuntimeError as exc:  # a generator's StopIteration surfaces as RuntimeError (PEP 479)
        assert isinstance(exc.__cause__, StopIteration), exc
    return last


def test_a_password_change_or_a_logout_ends_the_streams_they_revoke(live_system, alice, bob):
    from tests.e2e.test_access_live import _browser_login, _browser_logout

    browser, other_browser = _browser_login(live_system), _browser_login(live_system)
    streams = [SseClient(f"{live_system.base_url}/api/papers/stream/",
                         headers={"Cookie": f"sessionid={session.cookies['sessionid']}"}, timeout=20)
               for session in (browser, other_browser)]
    for stream in streams:
        assert next(stream.events()).data["topic"] == "papers", "the session authenticated it"
    _browser_logout(live_system, browser)
    assert stream_ends_with(streams[0]) == {"type": "error", "code": "access_revoked",
                                            "message": "The session was logged out; log in again."}

    by_token = SseClient(f"{live_system.base_url}/api/papers/stream/", headers=bearer(token(live_system, *alice)),
                         timeout=20)
    bobs = SseClient(f"{live_system.base_url}/api/papers/stream/?system=1", headers=bearer(token(live_system, *bob)),
                     timeout=20)
    assert next(by_token.events()).data["topic"] == "papers"
    assert next(bobs.events()).data["topic"] == "papers"
    _change_password("alice")
    assert stream_ends_with(by_token)["code"] == "access_revoked"
    assert stream_ends_with(streams[1])["code"] == "access_revoked", "the other session is alice's too"
    assert next(bobs.events()).data["event_type"] == "system_status", "bob's stream goes on"
    bobs.close()


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_open_streams_cost_no_thread_each(live_system, alice):
    pid = live_system.processes["daphne"].pid
    access = token(live_system, *alice)
    warm = SseClient(f"{live_system.base_url}/api/papers/stream/", headers=bearer(access))
    assert next(warm.events()).data["topic"] == "papers"  # the process's executor threads exist by now
    before = threads_of(pid)
    streams = [SseClient(f"{live_system.base_url}/api/papers/stream/?system=1", headers=bearer(access))
               for _ in range(15)]
    for stream in streams:
        assert next(stream.events()).data["topic"] == "papers"
    for stream in streams:
        assert next(stream.events()).data["event_type"] == "system_status", "every stream is live"
    assert threads_of(pid) - before < 5, (before, threads_of(pid))
    for stream in [warm, *streams]:
        stream.close()


def test_session_streams_give_their_request_s_database_connection_back(own_redis, alice):
    """The middleware's session and user queries ran on the request's thread; a stream that gives that thread back
    must close its connection first. On PostgreSQL (CI) a pool of two would otherwise be used up by two streams
    and the next request would wait out the pool's timeout."""
    from tests.e2e.test_access_live import _browser_login

    with running_system(redis_url=own_redis, name="sse-pool-", only=("daphne",), DATABASE_POOL_MAX="2") as system:
        browser = _browser_login(system)
        cookie = {"Cookie": f"sessionid={browser.cookies['sessionid']}"}
        for _ in range(5):
            stream = SseClient(f"{system.base_url}/api/papers/stream/", headers=cookie, timeout=20)
            assert next(stream.events()).data["topic"] == "papers"
            stream.close()
        listed = browser.get(f"{system.base_url}/api/papers/", timeout=8)  # well under the pool's 10 s wait
        assert listed.status_code == 200, system.log_tails()
