"""The rollup views on known rows: percentiles, TPOT, per-token ITL, throughput, goodput, repetitions."""

from __future__ import annotations

import pytest

from siliconbench.collector.rollups import Selection, Slo, load_figures, parse_slo, select_series
from siliconbench.collector.errors import InvalidOption, RunNotFound
from tests.collector import rows


def step_row(store, run_id: str, step: int = 0, slo: Slo = Slo()) -> dict:
    figures = load_figures(store, select_series(store, Selection(runs=(run_id,))), slo)
    return next(s for s in figures.steps if s.step == step)


@pytest.fixture
def run_id(store, unique_id):
    store.insert("runs", [rows.run(unique_id, "n1")], f"r/{unique_id}")
    return unique_id


def test_ttft_tpot_and_e2e_of_a_single_request(store, run_id):
    store.insert("requests", [rows.request(run_id, "n1", 0, ttft_ms=100, gaps_ms=(10, 20, 30), tail_ms=5)], run_id)
    s = step_row(store, run_id)
    assert s.ttft_ms.p50 == pytest.approx(100)
    assert s.e2e_ms.p50 == pytest.approx(165)
    assert s.tpot_ms.p50 == pytest.approx((165 - 100) / 3)      # (E2E − TTFT) ÷ (output tokens − 1)
    assert s.itl_mean_ms == pytest.approx(20)


def test_per_token_itl_divides_each_gap_by_the_tokens_of_its_chunk(store, run_id):
    store.insert("requests", [rows.request(run_id, "n1", 0, gaps_ms=(30, 30), tokens=[1, 3, 3])], run_id)
    s = step_row(store, run_id)
    assert s.itl_ms.p50 == pytest.approx(30)
    assert s.itl_token_ms.p50 == pytest.approx(10)
    assert s.tokens_per_chunk == pytest.approx(3)


def test_throughput_is_tokens_over_first_start_to_last_end(store, run_id):
    store.insert("requests", [rows.request(run_id, "n1", 0, start_s=0.0, gaps_ms=(100,) * 9, ttft_ms=100),   # ends at 1.0 s
                              rows.request(run_id, "n1", 1, start_s=1.0, gaps_ms=(100,) * 9, ttft_ms=100)],  # ends at 2.0 s
                 run_id)
    s = step_row(store, run_id)
    assert s.wall_s == pytest.approx(2.0)
    assert s.output_tps == pytest.approx(20 / 2.0)
    assert s.total_tps == pytest.approx((20 + 2 * 512) / 2.0)
    assert s.rps == pytest.approx(1.0)


def test_errors_are_counted_and_kept_out_of_latency(store, run_id):
    store.insert("requests", [rows.request(run_id, "n1", 0, ttft_ms=100), rows.request(run_id, "n1", 1, error="timeout")],
                 run_id)
    s = step_row(store, run_id)
    assert (s.requests, s.errors, s.ok_requests) == (2, 1, 1)
    assert s.ttft_ms.p99 == pytest.approx(100)


def test_goodput_counts_only_requests_within_every_slo(store, run_id):
    store.insert("requests", [rows.request(run_id, "n1", 0, ttft_ms=100, gaps_ms=(10,) * 3),
                              rows.request(run_id, "n1", 1, ttft_ms=600, gaps_ms=(10,) * 3),    # TTFT too slow
                              rows.request(run_id, "n1", 2, ttft_ms=100, gaps_ms=(90,) * 3)],   # TPOT too slow
                 run_id)
    s = step_row(store, run_id, slo=parse_slo(["ttft_ms=500", "tpot_ms=50"]))
    assert s.good_requests == 1 and s.good_tokens_out == 4
    assert step_row(store, run_id).good_requests == 3                     # no SLO: all successful requests


def test_a_replayed_batch_is_counted_once_in_the_digests(store, run_id):
    batch = [rows.request(run_id, "n1", i) for i in range(3)]
    store.insert("requests", batch, f"{run_id}/batch-1")
    store.insert("requests", batch, f"{run_id}/batch-1")
    assert step_row(store, run_id).requests == 3


def test_sweep_points_are_medians_of_repetitions_with_their_range(store, run_id):
    data = []
    for rep, ttft in enumerate((100, 200, 120)):
        data.append(rows.request(run_id, "n1", rep, step=rep, repetition=rep, ttft_ms=ttft))
    store.insert("requests", data, run_id)
    figures = load_figures(store, select_series(store, Selection(runs=(run_id,))), Slo())
    [point] = figures.points
    assert point.repetitions == 3
    assert point.median.ttft_ms.p50 == pytest.approx(120)
    assert (point.low.ttft_ms.p50, point.high.ttft_ms.p50) == pytest.approx((100, 200))


def test_unknown_run_is_an_error_that_names_it(store):
    with pytest.raises(RunNotFound, match="no-such-run"):
        select_series(store, Selection(runs=("no-such-run",)))


@pytest.mark.parametrize("bad", ["ttft=500", "ttft_ms:500", "itl_p99_ms=5"])
def test_bad_slo_syntax_is_rejected_with_the_accepted_form(bad):
    with pytest.raises(InvalidOption, match="KEY=MILLISECONDS with KEY one of ttft_ms, ttfa_ms, itl_ms, tpot_ms, e2e_ms"):
        parse_slo([bad])


@pytest.mark.parametrize("bad", ["ttft_ms=fast", "itl_ms=-1", "e2e_ms=inf"])
def test_a_bad_slo_limit_is_rejected_naming_the_key(bad):
    with pytest.raises(InvalidOption, match=f"--slo {bad.split('=')[0]}: the limit must be a number of milliseconds"):
        parse_slo([bad])


def test_goodput_bounds_each_request_s_mean_itl(store, run_id):
    store.insert("requests", [rows.request(run_id, "n1", 0, gaps_ms=(10,) * 3),
                              rows.request(run_id, "n1", 1, gaps_ms=(5, 5, 50)),    # mean 20 ms
                              rows.request(run_id, "n1", 2, gaps_ms=(30,) * 3)],    # mean 30 ms
                 run_id)
    assert step_row(store, run_id, slo=parse_slo(["itl_ms=25"])).good_requests == 2
    assert "ITL ≤ 25 ms (--slo)" == parse_slo(["itl_ms=25"]).describe()
