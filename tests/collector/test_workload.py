"""The workload is stated in every report, and 'vs baseline' is withheld across workloads unless asked."""

from __future__ import annotations

import csv
import html
import io
import json

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection
from siliconbench.collector.workload import requests_shape
from siliconbench.core.plan import plan_from_mapping
from tests.collector import load_modes as lm


@pytest.fixture
def two_workloads(store, unique_id) -> tuple[str, str]:
    short, long = f"w64-{unique_id}", f"w128-{unique_id}"
    lm.store_run(store, short, f"s-{unique_id}", "S")                    # the baseline: first by scenario
    lm.store_run(store, long, f"l-{unique_id}", "T", output_tokens=14)
    return short, long


def rows_of(report, key: str) -> dict[str, dict]:
    table = report.table(key)
    return {row[0]: dict(zip([c.name for c in table.columns], row)) for row in table.rows}


def test_the_workload_table_states_each_runs_plan(store, two_workloads):
    report = build_report(store, Selection(runs=two_workloads), Options(cost=False))
    short = rows_of(report, "workload")["S"]
    assert (short["endpoint"], short["prompt tokens"], short["output tokens"], short["warm-up requests"],
            short["repetitions"]) == ("completions", 64, 7, 1, 2)
    assert short["steps (one repetition)"] == ("concurrency=2 ×4 req; poisson rate=4/s ×8 req; poisson rate=8/s ×8 req; "
                                               "constant rate=8/s cap=2 ×8 req; concurrency=4 1 s")
    assert rows_of(report, "workload")["T"]["vs baseline"] == "differs: output tokens 14 vs 7"


def test_vs_baseline_is_withheld_across_workloads_and_the_report_says_why(store, two_workloads):
    report = build_report(store, Selection(runs=two_workloads), Options(cost=False))
    for key in ("ttft", "itl", "throughput"):
        assert rows_of(report, key)["T"]["vs baseline"] is None, key
        assert rows_of(report, key)["S"]["vs baseline"] == 0, key
    assert all(row[-2] is None for row in report.table("scaling").rows if row[0] == "T")
    for fmt, renderer in RENDERERS.items():
        text = renderer.report(report)
        text = html.unescape(text) if fmt == "html" else text
        if fmt == "csv":
            table = list(csv.DictReader(io.StringIO(text)))
            assert {r["workload_vs_baseline"] for r in table if r["scenario"] == "T"} == {"output tokens 14 vs 7"}
            assert {r["workload"] for r in table if r["scenario"] == "S"} == {
                "completions, prompt tokens 64, output tokens 7, prompts synthetic token ids, unique per run"}
        else:
            assert "MIXED workloads: T: output tokens 14 vs 7" in text and "--allow-mixed-workloads" in text, fmt


def test_mixed_workloads_are_compared_when_asked(store, two_workloads):
    report = build_report(store, Selection(runs=two_workloads), Options(cost=False, allow_mixed_workloads=True))
    assert rows_of(report, "ttft")["T"]["vs baseline"] == pytest.approx(0.0)   # same requests stored, same TTFT
    assert "compared anyway" in json.loads(RENDERERS["json"].report(report))["banners"][-1]


def test_runs_of_the_same_workload_are_compared_without_a_banner(store, unique_id):
    runs = (f"same1-{unique_id}", f"same2-{unique_id}")
    for i, run_id in enumerate(runs):
        lm.store_run(store, run_id, f"same{i}-{unique_id}", f"X{i}", repetitions=2)
    report = build_report(store, Selection(runs=runs), Options(cost=False))
    assert report.mixed == {} and not [b for b in json.loads(RENDERERS["json"].report(report))["banners"]
                                       if "MIXED" in b]


@pytest.mark.parametrize("changes, prompts", [
    ({}, "synthetic token ids, unique per run"),
    ({"endpoint": "chat"}, "synthetic text, unique per run"),
    ({"endpoint": "chat", "shared_prompts": True, "seed": 7}, "synthetic text, shared by runs of seed 7"),
    ({"token_id_prompts": False}, "synthetic text, unique per run"),
    ({"dataset": "chats.jsonl"}, "dataset chats.jsonl, sent as is (the same in every run)"),
])
def test_the_workload_says_whether_another_run_sent_the_same_prompts(changes, prompts):
    plan = plan_from_mapping({**lm.PLAN, **changes}, "test")
    assert requests_shape(plan)["prompts"] == prompts


def test_a_trace_replays_workload_is_its_trace_and_how_it_was_replayed_not_the_plans_lengths():
    plan = plan_from_mapping({"trace": {"file": "t.jsonl", "format": "mooncake", "rate_scale": 2.0,
                                        "window": "0:60"}}, "test")
    shape = requests_shape(plan)
    assert shape["prompts"] == "trace t.jsonl (mooncake, time x1, rate x2, window 0:60 s), each request's own lengths"
    assert shape["prompt tokens"] is None and shape["output tokens"] is None
