"""What a connection accepts (realtime.subscriptions) and its once-only memory, on plain objects: no server, no
Redis, no database (the fan-out groups are not joined; subscriptions are recorded as the consumer records them
once joined)."""

import sys
from types import SimpleNamespace

import pytest

from realtime.broadcast import PAPER_MESSAGE, layer_message
from realtime.protocol import TOPIC_PAPERS
from realtime.subscriptions import ALL_TYPES, RECENT, RecentlySent, Subscriptions

A, B = "paper-a", "paper-b"
OWNER, OTHER = 7, 8


def user(pk: int = OWNER, is_staff: bool = False) -> SimpleNamespace:
    return SimpleNamespace(pk=pk, is_staff=is_staff, is_active=True, is_authenticated=True)


def event(paper_id: str, seq: int | None, event_type: str = "entity_extracted", owner_id: int = OWNER) -> dict:
    """A paper event as the fan-out hands it to a connection."""
    return layer_message({"event_type": event_type, "paper_id": paper_id, "seq": seq}, owner_id=owner_id)


def with_topic(subscriptions: Subscriptions, event_types: frozenset[str] | None = None) -> Subscriptions:
    """Record topic "papers" as Subscriptions.add_topic does once its group is joined."""
    subscriptions.topics[TOPIC_PAPERS] = event_types
    subscriptions._topics_changed()
    return subscriptions


def test_a_paper_subscription_accepts_its_paper_and_the_types_it_asked_for_only():
    subscriptions = Subscriptions(member=None)
    subscriptions.record_paper(A, frozenset({"status_changed"}))
    assert event(A, 1)["type"] == PAPER_MESSAGE
    assert subscriptions.accepts(event(A, 1, "status_changed"), user())
    assert not subscriptions.accepts(event(A, 2, "entity_extracted"), user()), "a type it did not ask for"
    assert not subscriptions.accepts(event(B, 1, "status_changed"), user()), "a paper it did not subscribe to"


def test_without_a_filter_every_paper_event_type_is_accepted():
    subscriptions = Subscriptions(member=None)
    subscriptions.record_paper(A, None)
    assert subscriptions.papers[A].types == ALL_TYPES
    for seq, event_type in enumerate(sorted(ALL_TYPES), start=1):
        assert subscriptions.accepts(event(A, seq, event_type), user())


def test_an_unsubscribed_paper_is_no_longer_accepted():
    subscriptions = Subscriptions(member=None)
    subscriptions.record_paper(A, None)
    subscriptions.papers.pop(A)  # what drop_paper does before leaving the group
    assert not subscriptions.accepts(event(A, 1), user())


def test_subscribing_again_replaces_the_filter_and_keeps_the_higher_floor():
    subscriptions = Subscriptions(member=None)
    subscriptions.record_paper(A, frozenset({"status_changed"}), covered=10)
    subscriptions.record_paper(A, frozenset({"error"}), covered=4)
    assert not subscriptions.accepts(event(A, 11, "status_changed"), user())
    assert not subscriptions.accepts(event(A, 9, "error"), user()), "covered by the first snapshot"
    assert subscriptions.accepts(event(A, 11, "error"), user())


def test_topic_papers_accepts_only_papers_the_user_may_see_and_its_types():
    subscriptions = with_topic(Subscriptions(member=None), frozenset({"status_changed", "error"}))
    assert subscriptions.accepts(event(A, 1, "status_changed"), user())
    assert not subscriptions.accepts(event(A, 2, "entity_extracted"), user()), "a type the topic did not ask for"
    assert not subscriptions.accepts(event(B, 1, "status_changed", owner_id=OTHER), user()), "not theirs"
    assert subscriptions.accepts(event(B, 2, "status_changed", owner_id=OTHER), user(is_staff=True)), "staff see all"
    inactive = user()
    inactive.is_active = False
    assert not subscriptions.accepts(event(A, 3, "status_changed"), inactive)


def test_leaving_topic_papers_stops_its_events():
    subscriptions = with_topic(Subscriptions(member=None))
    assert subscriptions.accepts(event(A, 1), user())
    del subscriptions.topics[TOPIC_PAPERS]
    subscriptions._topics_changed()
    assert not subscriptions.accepts(event(A, 2), user())


def test_the_topic_completes_a_filtered_paper_subscription():
    """A type the paper subscription filtered out still comes through the topic when the topic asked for it."""
    subscriptions = with_topic(Subscriptions(member=None), frozenset({"error"}))
    subscriptions.record_paper(A, frozenset({"status_changed"}))
    assert subscriptions.accepts(event(A, 1, "error"), user())
    assert not subscriptions.accepts(event(A, 2, "entity_extracted"), user())


def test_an_event_arriving_through_two_groups_is_accepted_once():
    subscriptions = with_topic(Subscriptions(member=None))
    subscriptions.record_paper(A, None)
    for seq in range(1, 200):
        assert subscriptions.accepts(event(A, seq), user()), "through the paper's group"
        assert not subscriptions.accepts(event(A, seq), user()), "the same event through the owner's group"


def test_two_adjacent_events_arriving_swapped_are_each_accepted_once():
    subscriptions = with_topic(Subscriptions(member=None))
    subscriptions.record_paper(A, None)
    arrivals = [(A, 2), (A, 1), (A, 2), (B, 1), (A, 1), (B, 1), (A, 3)]
    accepted = [(paper, seq) for paper, seq in arrivals if subscriptions.accepts(event(paper, seq), user())]
    assert accepted == [(A, 2), (A, 1), (B, 1), (A, 3)]


def test_events_a_snapshot_covered_are_dropped():
    subscriptions = Subscriptions(member=None)
    subscriptions.record_paper(A, None, covered=5)
    assert [seq for seq in range(1, 9) if subscriptions.accepts(event(A, seq), user())] == [6, 7, 8]


def test_events_without_a_seq_are_never_taken_for_duplicates():
    subscriptions = Subscriptions(member=None)
    subscriptions.record_paper(A, None, covered=5)
    assert subscriptions.accepts(event(A, None), user())
    assert subscriptions.accepts(event(A, None), user())
    assert subscriptions.recently_sent is None, "nothing is remembered for them"


def test_the_once_only_memory_is_made_with_the_first_event_and_stays_bounded():
    subscriptions = with_topic(Subscriptions(member=None))
    assert subscriptions.recently_sent is None, "an idle connection holds no memory of sent events"
    subscriptions.accepts(event(A, 1), user())
    sent = subscriptions.recently_sent
    size = sys.getsizeof(sent.seqs) + sys.getsizeof(sent.papers)
    for seq in range(2, 5000):
        subscriptions.accepts(event(f"paper-{seq % 50}", seq), user())
    assert subscriptions.recently_sent is sent
    assert (len(sent.seqs), len(sent.papers)) == (RECENT, RECENT)
    assert sys.getsizeof(sent.seqs) + sys.getsizeof(sent.papers) == size


def test_recently_sent_forgets_only_what_later_events_pushed_out():
    sent = RecentlySent()
    assert sent.first_time(A, 1) and not sent.first_time(A, 1)
    assert sent.first_time(B, 1), "the same seq of another paper is another event"
    for seq in range(2, 2 + RECENT):
        assert sent.first_time(A, seq)
    assert all(not sent.first_time(A, seq) for seq in range(2, 2 + RECENT)), "the last RECENT are remembered"
    assert sent.first_time(A, 1), "a window, not a lifetime: pushed out by RECENT later events of the paper"


@pytest.mark.parametrize("seq", [1, 2**40, 2**63 - 1])
def test_recently_sent_takes_any_seq_the_log_can_hold(seq):
    sent = RecentlySent()
    assert sent.first_time(A, seq) and not sent.first_time(A, seq)
