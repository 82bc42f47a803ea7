"""Unit tests: reconnection delays grow exponentially up to the cap, jittered within their bounds."""

import random

import pytest

from paperclient import Backoff


def test_ceilings_double_up_to_the_maximum():
    backoff = Backoff(initial=0.5, maximum=30, factor=2)
    assert [backoff.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.ceiling(10_000) == 30  # no overflow however long the outage


@pytest.mark.parametrize("seed", range(20))
def test_every_delay_lies_between_the_floor_and_its_attempts_ceiling(seed):
    backoff = Backoff(initial=0.5, maximum=30, floor=0.05, rng=random.Random(seed))
    for attempt in range(40):
        delay = backoff.next_delay()
        assert 0.05 <= delay <= backoff.ceiling(attempt)


def test_jitter_spreads_clients_that_dropped_together():
    delays = {round(Backoff(rng=random.Random(seed)).next_delay(), 6) for seed in range(50)}
    assert len(delays) > 40
    late = [Backoff(rng=random.Random(seed), attempt=10).next_delay() for seed in range(200)]
    assert min(late) < 10 and max(late) > 20, "spread over the whole range, not bunched at the cap"


def test_reset_starts_again_from_the_shortest_delays():
    backoff = Backoff(initial=0.5, maximum=30, rng=random.Random(1))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 0.5


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"initial": 5, "maximum": 1}, {"factor": 0.5}, {"floor": -1}])
def test_nonsense_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)
