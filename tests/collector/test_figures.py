"""The typed records reports read: percentiles named by their quantile, every view column a field,
a view's row given back exactly, and a figure over no value missing rather than 0."""

from __future__ import annotations

import dataclasses
import math

import pytest

from siliconbench.collector.figures import (
    UTIL_QUANTILES,
    DeviceRow,
    Percentiles,
    PointRow,
    RollupMismatch,
    StepRow,
    SweepFigures,
    quantile_name,
    record,
)
from siliconbench.collector.levels import QUANTILES
from siliconbench.collector.device_views import DEVICE_VIEWS


def test_percentiles_has_one_field_per_quantile_of_the_views():
    assert [f.name for f in dataclasses.fields(Percentiles)] == [quantile_name(q) for q in QUANTILES]


def test_the_utilisation_quantiles_are_the_ones_the_device_views_compute():
    quantiles = ", ".join(str(q) for q in UTIL_QUANTILES)
    assert f"quantilesIf({quantiles})(value, is_util)" in DEVICE_VIEWS["device_rollups"]
    assert f"quantilesIf({quantiles})(value, is_util)" in DEVICE_VIEWS["node_rollups"]


def test_a_percentile_array_is_read_by_quantile_with_nan_as_missing():
    p = Percentiles.of([1.0, 2.0, math.nan, 4.0])
    assert (p.p50, p.p90, p.p95, p.p99) == (1.0, 2.0, None, 4.0)
    assert p.at(0.99) == 4.0
    assert Percentiles.of([]) is None


def test_an_array_of_other_quantiles_fills_only_theirs():
    p = Percentiles.of([30.0, 70.0], UTIL_QUANTILES)
    assert (p.p50, p.p90, p.p95, p.p99) == (30.0, 70.0, None, None)
    with pytest.raises(ValueError):
        Percentiles.of([1.0, 2.0, 3.0], UTIL_QUANTILES)


def _view_row(cls, **values) -> dict:
    return {f.name: values.get(f.name) for f in dataclasses.fields(cls)}


def test_a_view_column_the_record_does_not_know_fails_the_build_naming_the_record():
    row = {**_view_row(DeviceRow, run_id="r", agent_id="a"), "new_column": 1}
    with pytest.raises(RollupMismatch, match="DeviceRow"):
        record(DeviceRow, row)


def test_a_sweep_row_splits_into_median_low_and_high_and_gives_the_row_back():
    row = {"run_id": "r", "agent_id": "a", "mode": "closed", "concurrency": 4, "rate_rps": 0.0, "repetitions": 3,
           "steps": [0, 1, 2], "saturated_steps": 0, "partial_steps": 0, "agent_cpu_pct_max": 10.0,
           "loop_lag_p99_ms_max": 1.0}
    for f in dataclasses.fields(SweepFigures):
        empty = [] if "Percentiles" in str(f.type) else None  # a percentile column without values: []
        row.update({f.name: empty, f"{f.name}_min": empty, f"{f.name}_max": empty})
    row.update(ttft_mean_ms=120.0, ttft_mean_ms_min=100.0, ttft_mean_ms_max=200.0,
               ttft_ms=[120.0, 150.0, 160.0, 200.0], ttft_ms_min=[100.0, 0.0, 0.0, 0.0],
               ttft_ms_max=[200.0, 0.0, 0.0, 0.0], output_tps=50.0, output_tps_min=40.0, output_tps_max=60.0)
    point = PointRow.of(row)
    assert (point.median.ttft_ms.p99, point.low.ttft_ms.p50, point.high.ttft_ms.p50) == (200.0, 100.0, 200.0)
    assert (point.median.output_tps, point.low.output_tps, point.high.output_tps) == (50.0, 40.0, 60.0)
    assert point.median.e2e_ms is None and point.steps == (0, 1, 2)
    assert point.as_row() == row and list(point.as_row()) == list(row)


def test_a_step_without_a_successful_request_has_no_latency_percentiles_not_zero():
    # ClickHouse's quantiles over no value are 0; the mean over the same values is NULL
    row = _view_row(StepRow, run_id="r", agent_id="a", step=0, ttft_ms=[0.0] * 4, e2e_ms=[0.0] * 4,
                    itl_ms=[5.0] * 4, itl_mean_ms=5.0)
    step = record(StepRow, row)
    assert step.ttft_ms is None and step.e2e_ms is None
    assert step.itl_ms == Percentiles(5.0, 5.0, 5.0, 5.0)


def test_a_zero_percentile_with_its_mean_is_a_value():
    step = record(StepRow, _view_row(StepRow, run_id="r", agent_id="a", step=0, ttft_ms=[0.0] * 4, ttft_mean_ms=0.0))
    assert step.ttft_ms == Percentiles(0.0, 0.0, 0.0, 0.0)
