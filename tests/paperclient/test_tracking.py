"""Unit tests: the client keeps each paper's events exactly once and resumes from its contiguous high-water mark."""

import base64
import json

import pytest

from paperclient import AuthenticationError, PaperClient
from paperclient import tokens as tokens_module
from paperclient.client import _PaperSubscription
from paperclient.tokens import Tokens, token_expiry
from paperclient.tracking import MAX_HELD, SeqTracker

PAPER = "123e4567-e89b-12d3-a456-426614174000"


def test_duplicates_and_replays_are_dropped_gaps_held_until_filled():
    tracker = SeqTracker()
    tracker.reset(3)
    assert [tracker.accept(seq) for seq in (2, 3, 4, 6, 6, 7)] == [False, False, True, True, False, True]
    assert tracker.contiguous == 4  # 5 is missing: resume from 4
    assert tracker.accept(5) and tracker.contiguous == 7 and not tracker.above
    assert not tracker.accept(6)


def test_a_papers_first_event_from_a_topic_sets_the_mark():
    tracker = SeqTracker()
    assert tracker.accept(12) and tracker.contiguous == 12


def test_a_gap_that_never_closes_does_not_grow_without_bound():
    tracker = SeqTracker()
    tracker.reset(0)
    for seq in range(2, MAX_HELD + 3):
        tracker.accept(seq)
    assert len(tracker.above) <= MAX_HELD and tracker.contiguous == MAX_HELD + 2


def client() -> PaperClient:
    return PaperClient("http://127.0.0.1:1", username="alice", password="pw")


def test_a_resubscription_carries_since_and_the_filter():
    paper_client = client()
    paper_client.papers[PAPER] = _PaperSubscription(event_types=("error",))
    assert paper_client._paper_message(PAPER) == {"type": "subscribe", "paper_id": PAPER, "event_types": ["error"]}
    paper_client.trackers[PAPER] = SeqTracker(contiguous=41)
    assert paper_client._paper_message(PAPER)["since"] == 41


@pytest.mark.parametrize(
    ("recovery", "expected"), [(None, 41), ({"since": 41, "complete": True, "replayed": 16}, 41),
                               ({"since": 41, "complete": False, "replayed": 0, "reason": "pruned"}, 57)],
)
def test_a_gap_the_server_cannot_close_continues_from_the_snapshot(recovery, expected):
    paper_client = client()
    paper_client.trackers[PAPER] = SeqTracker(contiguous=41)
    message = {"type": "subscribed", "paper_id": PAPER, "snapshot": {"seq": 57, "status": "processing"}}
    paper_client._on_paper_subscribed({**message, **({"recovery": recovery} if recovery else {})})
    assert paper_client.trackers[PAPER].contiguous == expected


def test_a_fresh_subscription_continues_after_the_snapshot():
    paper_client = client()
    paper_client._on_paper_subscribed({"paper_id": PAPER, "snapshot": {"seq": 57, "status": "completed"}})
    assert paper_client.trackers[PAPER].contiguous == 57 and paper_client.trackers[PAPER].final


def jwt(claims: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"e30.{body}.sig"


def test_token_expiry_reads_exp_and_survives_garbage():
    assert token_expiry(jwt({"exp": 1_900_000_000})) == 1_900_000_000
    for garbage in ("not-a-jwt", jwt({"sub": 1}), "a.!!!.c", jwt({"exp": "soon"})):
        assert token_expiry(garbage) is None


async def test_a_refused_refresh_without_a_password_is_an_authentication_error(monkeypatch):
    calls = []

    def post(url, body, timeout):
        calls.append((url, body))
        return 401, {"detail": "Token is blacklisted", "code": "token_not_valid"}

    monkeypatch.setattr(tokens_module, "_post_json", post)
    tokens = Tokens("http://h/api", access=jwt({"exp": 1}), refresh="r1")
    with pytest.raises(AuthenticationError, match="token_not_valid"):
        await tokens.renew()
    assert calls == [("http://h/api/token/refresh/", {"refresh": "r1"})] and tokens.refresh is None


async def test_a_refused_refresh_falls_back_to_the_password_and_keeps_the_rotated_pair(monkeypatch):
    replies = iter([(401, {"code": "token_not_valid"}), (200, {"access": "a2", "refresh": "r2"})])
    monkeypatch.setattr(tokens_module, "_post_json", lambda url, body, timeout: next(replies))
    tokens = Tokens("http://h/api", refresh="r1", username="alice", password="pw")
    assert await tokens.renew() == "a2" and tokens.refresh == "r2"


def test_either_credentials_or_a_token_and_an_http_url():
    with pytest.raises(ValueError):
        PaperClient("http://h")
    with pytest.raises(ValueError):
        PaperClient("ws://h", access="t")
    assert PaperClient("https://h:8443/", access="t").ws_url == "wss://h:8443/ws/papers"


async def test_a_failing_server_is_retried_not_taken_for_a_refusal(monkeypatch):
    monkeypatch.setattr(tokens_module, "_post_json", lambda url, body, timeout: (502, {}))
    with pytest.raises(ConnectionError):
        await Tokens("http://h/api", username="alice", password="pw").obtain()
