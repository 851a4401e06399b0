"""Consistency checks on summary figures."""

from __future__ import annotations

from siliconbench.collector.checks import PointFigures, check_point, stated_cost


def checks_of(**figures) -> set[str]:
    return {f.check for f in check_point(PointFigures(subject="A", **figures))}


def test_consistent_figures_raise_nothing():
    # 4 streams, 1 s per request: 4 req/s; 100 tokens each at 8 ms/token: 400 tok/s <= 4 / 8 ms
    assert checks_of(concurrency=4, rps=4.0, e2e_mean_ms=1000, output_tps=400, tpot_mean_ms=8.0,
                     itl_token_mean_ms=8.2) == set()


def test_littles_law_flags_request_rate_that_concurrency_and_latency_cannot_give():
    assert "Little's law" in checks_of(concurrency=4, rps=8.0, e2e_mean_ms=1000)


def test_tokens_per_second_above_one_stream_per_tpot_are_flagged():
    assert {"Little's law", "tok/s at concurrency 1 vs 1/TPOT"} <= checks_of(concurrency=1, output_tps=4200, tpot_mean_ms=8)


def test_tpot_and_per_token_itl_must_agree():
    assert "TPOT vs ITL" in checks_of(concurrency=1, tpot_mean_ms=10, itl_token_mean_ms=20)


def test_client_and_server_token_counts_and_ttft_are_compared():
    assert {"client vs server tokens", "client vs server TTFT"} <= checks_of(
        concurrency=1, client_tokens=1000, server_tokens=1100, ttft_mean_ms=50, server_ttft_mean_ms=80)


def test_a_stated_cost_is_checked_against_its_own_price_and_throughput():
    [finding] = stated_cost("A", 98.32, 4200, 0.85)
    assert "$6.50" in finding.message
    assert stated_cost("A", 98.32, 4200, 6.50) == []
