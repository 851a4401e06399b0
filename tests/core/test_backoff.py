"""One back-off for the shipper's reconnects and the samplers' restarts."""

from __future__ import annotations

import random

import pytest

from siliconbench.core.backoff import Backoff


def test_the_step_doubles_up_to_the_maximum_and_starts_over_on_reset():
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next() == 0.2


def test_jitter_spreads_each_delay_around_its_step():
    random.seed(7)
    backoff = Backoff(1.0, 1.0, jitter=0.5)
    delays = [backoff.next() for _ in range(200)]
    assert 0.5 <= min(delays) < 0.6 and 1.4 < max(delays) <= 1.5


@pytest.mark.parametrize(("first", "top", "jitter"), [(0, 1, 0), (2, 1, 0), (1, 2, 1.0), (1, 2, -0.1)])
def test_a_back_off_that_could_not_wait_is_refused(first, top, jitter):
    with pytest.raises(ValueError, match="back-off"):
        Backoff(first, top, jitter)
