"""Fixtures of the papers unit tests."""

import pytest


@pytest.fixture
def no_celery_send(monkeypatch) -> list[dict]:
    """Unit level: record the pipeline task's hand-offs instead of talking to a broker (e2e tests use a real
    worker); the list of apply_async keyword arguments."""
    sent: list[dict] = []
    monkeypatch.setattr("papers.tasks.process_paper.apply_async", lambda **kw: sent.append(kw))
    return sent
