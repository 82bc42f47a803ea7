"""What a paper subscription starts with costs one query: the snapshot, and with `since` the replay, at once."""

import pytest

from papers import services
from papers.models import Paper, PaperEvent
from realtime.events import StatusEvent
from realtime.snapshots import _visible_paper_state_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper(user, text_upload):
    """A paper of `user` whose log holds seqs 1..6."""
    paper = Paper.objects.create(owner=user, title="p", file=text_upload)
    for i in range(6 - paper.events.count()):
        services.paper_event_append(paper=paper, event=StatusEvent(
            paper_id=paper.pk, old_status="processing", new_status="processing", message=str(i)))
    assert list(paper.events.values_list("seq", flat=True)) == [1, 2, 3, 4, 5, 6]
    return paper


def test_a_subscribe_without_since_is_one_query(user, paper, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = _visible_paper_state_sync(user, str(paper.pk), None, 100)
    assert found.snapshot["seq"] == 6 and found.missed == [] and found.recovery is None


def test_a_resume_is_one_query_with_the_missed_events_in_order(user, paper, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = _visible_paper_state_sync(user, str(paper.pk), 2, 100)
    logged = list(PaperEvent.objects.filter(paper=paper, seq__gt=2).order_by("seq").values_list("payload", flat=True))
    assert found.missed == logged and [e["seq"] for e in found.missed] == [3, 4, 5, 6]
    assert found.recovery == {"since": 2, "complete": True, "replayed": 4}
    assert found.snapshot["seq"] == 6 and found.owner_id == user.pk


@pytest.mark.parametrize(("since", "limit", "recovery"), [
    (6, 100, {"since": 6, "complete": True, "replayed": 0}),
    (9, 100, {"since": 9, "complete": False, "replayed": 0, "reason": "unknown_seq"}),
    (1, 4, {"since": 1, "complete": False, "replayed": 0, "reason": "too_many"}),
    (2, 4, {"since": 2, "complete": True, "replayed": 4}),
])
def test_every_recovery_outcome_is_one_query(user, paper, since, limit, recovery, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = _visible_paper_state_sync(user, str(paper.pk), since, limit)
    assert found.recovery == recovery
    assert len(found.missed) == recovery["replayed"]


def test_a_pruned_log_is_reported_in_the_same_query(user, paper, django_assert_num_queries):
    PaperEvent.objects.filter(paper=paper, seq__lte=4).delete()
    with django_assert_num_queries(1):
        found = _visible_paper_state_sync(user, str(paper.pk), 2, 100)
    assert found.recovery == {"since": 2, "complete": False, "replayed": 0, "reason": "pruned",
                              "first_available_seq": 5}
    assert found.missed == []


def test_a_paper_of_someone_else_is_none_in_one_query(other_user, paper, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert _visible_paper_state_sync(other_user, str(paper.pk), 2, 100) is None
