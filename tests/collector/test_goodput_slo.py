"""The SLO given to the agent (stored with the run's plan) is the report's default goodput SLO, stated
as the run's; the report's --slo overrides it, stated as such."""

from __future__ import annotations

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection, parse_slo
from tests.collector import load_modes as lm

NO_COST = Options(cost=False)


@pytest.fixture
def slo_run(store, unique_id) -> str:
    """Every request's TTFT is 40 ms and its mean ITL 10 ms; the agent was given TTFT <= 30 ms."""
    run_id = f"slo-{unique_id}"
    lm.store_run(store, run_id, f"s-{unique_id}", "S", steps=1, slo={"ttft_ms": 30.0})
    return run_id


def test_the_run_s_slo_is_the_report_s_default_and_says_so(store, slo_run):
    report = build_report(store, Selection(runs=(slo_run,)), NO_COST)
    assert report.slo.describe() == "TTFT ≤ 30 ms (the run's)"
    assert [s.good_requests for s in report.figures.steps] == [0]   # 40 ms > 30 ms: none was good
    assert "SLO for goodput: TTFT ≤ 30 ms (the run's)" in RENDERERS["markdown"].report(report)


def test_the_report_s_slo_overrides_the_run_s_and_takes_every_agent_key(store, slo_run):
    report = build_report(store, Selection(runs=(slo_run,)), Options(cost=False, slo=parse_slo(["itl_ms=15"])))
    assert report.slo.describe() == "ITL ≤ 15 ms (--slo)"
    assert [s.good_requests for s in report.figures.steps] == [4]   # the run's TTFT bound no longer applies


def test_a_run_given_no_slo_counts_every_successful_request(store, unique_id):
    run_id = f"noslo-{unique_id}"
    lm.store_run(store, run_id, f"n-{unique_id}", "N", steps=1)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    assert report.slo.describe() == "none (every successful request counts)"
    assert [s.good_requests for s in report.figures.steps] == [4]
