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


def test_an_uncapped_rate_step_is_held_to_its_offered_rate_not_to_concurrency_zero():
    assert checks_of(concurrency=0, mode="poisson", rate_rps=8.0, rps=8.1, e2e_mean_ms=500, output_tps=400,
                     tpot_mean_ms=8.0, mean_in_flight=4.0, sent_rps=8.0, requests=400) == set()
    assert "Little's law" in checks_of(concurrency=0, mode="constant", rate_rps=8.0, rps=4.0, e2e_mean_ms=500)


def test_a_capped_rate_step_expects_the_lower_of_its_rate_and_cap_over_e2e():
    # cap 2 at 1 s per request holds at most 2 req/s, whatever the 8 req/s offered
    assert checks_of(concurrency=2, mode="constant", rate_rps=8.0, rps=2.0, e2e_mean_ms=1000) == set()
    assert "Little's law" in checks_of(concurrency=2, mode="constant", rate_rps=8.0, rps=8.0, e2e_mean_ms=1000)


def test_an_open_step_that_sent_below_its_offered_rate_is_flagged():
    assert "offered vs sent" in checks_of(concurrency=0, mode="constant", rate_rps=8.0, sent_rps=5.0)


def test_poisson_arrivals_of_few_requests_are_allowed_their_noise():
    # 16 Poisson arrivals know their rate to about ±25 %: 5 req/s sent of 8 offered is within 3 of that
    assert "offered vs sent" not in checks_of(concurrency=0, mode="poisson", rate_rps=8.0, sent_rps=5.0, requests=16)
    assert "offered vs sent" in checks_of(concurrency=0, mode="poisson", rate_rps=8.0, sent_rps=5.0, requests=4000)


def test_a_closed_step_below_full_concurrency_gets_a_steady_state_note():
    # the case: 40 requests at concurrency 16 never slowed down, yet only ~13.3 in flight on average
    found = check_point(PointFigures(subject="A", concurrency=16, mean_in_flight=13.3))
    assert [(f.check, f.severity, f.point) for f in found] == [("steady state", "note", "concurrency 16")]


def test_a_step_whose_rate_was_never_recorded_is_checked_without_dividing_by_zero():
    assert checks_of(concurrency=0, mode="open", rate_rps=0.0, rps=4.0, e2e_mean_ms=100, output_tps=40,
                     tpot_mean_ms=8.0, mean_in_flight=0.4, sent_rps=4.0) == set()
    assert checks_of(concurrency=0, rps=4.0, e2e_mean_ms=100, output_tps=40, tpot_mean_ms=8.0) == set()


def test_littles_law_reads_the_steady_figures_where_the_step_has_them():
    # 16 streams of 100 ms, 7 tokens each: 1,120 tok/s while all are in flight; a long drain pulls the whole
    # step to 100 req/s (700 tok/s)
    whole = dict(concurrency=16, rps=100.0, e2e_mean_ms=100, output_tps=700, tpot_mean_ms=10.0)
    assert "Little's law" in checks_of(**whole)
    assert "Little's law" not in checks_of(**whole, steady_output_tps=1120, steady_s=0.2)
    [found] = check_point(PointFigures(subject="A", **whole, steady_output_tps=600, steady_s=0.2))
    assert found.message == ("steady 600 output tok/s vs concurrency ÷ mean E2E = 16 ÷ 0.100 s × 7.0 output tokens "
                             "per request = 1,120 tok/s (-46%)")


def test_a_steady_part_of_a_single_round_is_left_to_the_whole_step_figures():
    # 8 requests at concurrency 8: the steady part is the one round up to its fastest request, which reads low
    whole = dict(concurrency=8, rps=80.0, e2e_mean_ms=100, output_tps=560, tpot_mean_ms=10.0)
    assert "Little's law" not in checks_of(**whole, steady_output_tps=300, steady_s=0.09)


def test_the_token_bound_reads_the_steady_output_rate():
    # 1 stream at 10 ms per token delivers at most 100 tok/s: a steady 150 tok/s cannot be
    found = check_point(PointFigures(subject="A", concurrency=1, output_tps=90, tpot_mean_ms=10.0,
                                     e2e_mean_ms=100, steady_output_tps=150, steady_s=0.5))
    assert {f.message for f in found if f.check == "tok/s at concurrency 1 vs 1/TPOT"} == {
        "steady 150 tok/s at concurrency 1, but 1 ÷ 10 ms = 100 tok/s is the most one stream can deliver"}
