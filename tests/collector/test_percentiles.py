"""One percentile definition everywhere: exact, the value at 0-based rank floor(q x n) of the sorted
values (ClickHouse quantileExact; the agent's selfmon.percentile), held against numpy over a million
generated inter-token gaps: the stated error is zero."""

from __future__ import annotations

import numpy as np
import pytest

from siliconbench.agent.selfmon import percentile
from siliconbench.collector.rollups import Selection, Slo, load_figures, select_series
from siliconbench.collector.levels import QUANTILES
from tests.collector import rows

REQUESTS, CHUNKS = 500, 2001          # 500 x 2,000 = 1,000,000 gaps in one step


def rank_floor(values: np.ndarray, q: float) -> float:
    """numpy's sort, then the documented rank."""
    ordered = np.sort(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


@pytest.fixture(scope="module")
def million_gaps(store) -> tuple[str, np.ndarray]:
    run_id = "percentiles-1m"
    rng = np.random.default_rng(13)
    # heavy-tailed gaps in whole microseconds (stored as ns offsets): lognormal around 10 ms
    gaps_us = np.maximum(1, np.round(rng.lognormal(np.log(10_000), 0.6, (REQUESTS, CHUNKS - 1)))).astype(np.int64)
    store.insert("runs", [rows.run(run_id, "p1")], f"r/{run_id}")
    batch = [rows.request(run_id, "p1", i, ttft_ms=50.0, gaps_ms=tuple(g / 1e3 for g in gaps_us[i]))
             for i in range(REQUESTS)]
    store.insert("requests", batch, f"q/{run_id}")
    return run_id, gaps_us.ravel() / 1e3


def test_itl_percentiles_over_a_million_gaps_equal_numpys_at_the_stated_rank(store, million_gaps):
    run_id, gaps_ms = million_gaps
    [step] = load_figures(store, select_series(store, Selection(runs=(run_id,))), Slo()).steps
    assert len(gaps_ms) >= 1_000_000
    for q in QUANTILES:
        assert step.itl_ms.at(q) == pytest.approx(rank_floor(gaps_ms, q), abs=1e-9), q
        assert step.itl_token_ms.at(q) == pytest.approx(rank_floor(gaps_ms, q), abs=1e-9), q  # one token per chunk


def test_the_agent_uses_the_same_rank():
    values = np.random.default_rng(1).random(1001)
    for q in QUANTILES:
        assert percentile(list(values), q) == rank_floor(values, q)


def test_ttft_percentiles_of_a_step_are_exact_not_interpolated(store, unique_id):
    store.insert("runs", [rows.run(unique_id, "p2")], f"r/{unique_id}")
    store.insert("requests", [rows.request(unique_id, "p2", i, ttft_ms=t) for i, t in enumerate((10, 20, 30, 40))],
                 unique_id)
    [step] = load_figures(store, select_series(store, Selection(runs=(unique_id,))), Slo()).steps
    ttft = step.ttft_ms                                          # ranks 2, 3, 3, 3 of four: values, never between
    assert (ttft.p50, ttft.p90, ttft.p95, ttft.p99) == pytest.approx((30, 40, 40, 40))


def test_every_report_states_the_method_beside_its_percentiles(store, unique_id):
    from siliconbench.collector.reports import RENDERERS, Options, build_fleet_report, build_report

    store.insert("runs", [rows.run(unique_id, "p3"), rows.run(unique_id, "p3", phase="end")], f"r/{unique_id}")
    store.insert("requests", [rows.request(unique_id, "p3", i) for i in range(3)], unique_id)
    report = build_report(store, Selection(runs=(unique_id,)), Options(cost=False))
    fleet = build_fleet_report(store, unique_id)
    for fmt in ("markdown", "html", "json"):
        assert "rank ⌊q·n⌋" in RENDERERS[fmt].report(report), fmt
    for fmt in ("markdown", "html"):
        assert "rank ⌊q·n⌋" in RENDERERS[fmt].fleet(fleet), fmt
