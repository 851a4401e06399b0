"""Self-monitoring: the percentile helper behind dispatch-delay and loop-lag p99s, and the monitor itself."""

from __future__ import annotations

import asyncio
import time

from hypothesis import given
from hypothesis import strategies as st
import pytest

from siliconbench.agent.selfmon import SelfMonitor, percentile


def test_percentile_of_nothing_is_zero():
    assert percentile([], 0.99) == 0


def test_percentile_is_a_value_of_the_input_at_rank_q_times_n():
    values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]
    assert percentile(values, 0.5) == 6
    assert percentile(values, 0.99) == 10
    assert percentile(values, 0.0) == 1


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50),
       st.floats(0, 1), st.floats(0, 1))
def test_a_higher_quantile_is_never_below_a_lower_one(values, a, b):
    low, high = sorted((a, b))
    assert percentile(values, low) <= percentile(values, high)
    assert percentile(values, high) in values


@pytest.mark.timing
async def test_the_monitor_reports_loop_lag_when_the_loop_is_blocked():
    monitor = SelfMonitor()
    monitor.start()
    await asyncio.sleep(0.05)
    time.sleep(0.1)  # noqa: ASYNC251 - block the loop: the next probe wakes ~100 ms late
    await asyncio.sleep(0.05)
    report = await monitor.stop()
    assert report.loop_lag_p99_ms >= 50
