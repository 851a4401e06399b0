"""A trace step's windows: a round width that cuts its span into at most MAX_WINDOWS windows."""

import pytest

from siliconbench.collector.trace_figures import MAX_WINDOWS, window_width_s


@pytest.mark.parametrize("span_s, width_s", [(0.68, 0.05), (1.55, 0.1), (306.0, 20.0), (3600.0, 200.0), (0.0, 0.00005)])
def test_the_window_is_a_round_width_giving_at_most_twenty_windows(span_s, width_s):
    assert window_width_s(span_s) == pytest.approx(width_s)
    assert span_s / window_width_s(span_s) <= MAX_WINDOWS
