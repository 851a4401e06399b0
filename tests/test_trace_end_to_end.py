"""Trace replay through the whole pipeline (simulator -> agent -> gRPC -> collector -> chDB -> every report
format), each a real process: every trace request stored once with its line, its scheduled offset, its
dispatch lag and the reuse it expected, and the replay's tables in each report format."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from siliconbench.agent.traces.formats import parse_trace
from siliconbench.collector.demo import run_demo
from siliconbench.core.plan import Plan
from siliconbench.core.trace import TracePlan

FIXTURES = Path(__file__).parent / "fixtures" / "traces"
MOONCAKE = [json.loads(line) for line in (FIXTURES / "mooncake.jsonl").read_text().splitlines()]
SIM = ["--ttft-ms", "5", "--itl-ms", "1"]


def collector(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def sql(store: str, query: str) -> list[list[str]]:
    return [line.split("\t") for line in collector("sql", query, "--store", store).strip().splitlines()[1:]]


def plan(file: str, kind: str) -> Plan:
    return Plan(trace=TracePlan(file=str(FIXTURES / file), format=kind), repetitions=1, warmup_requests=1,
                slo={"ttft_ms": 1000.0})


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[str, str, str]:
    store = f"chdb://{tmp_path_factory.mktemp('traces')}/data"
    mooncake = run_demo(store, None, plan("mooncake.jsonl", "mooncake"), ["--trace-rate-scale", "2"], SIM)
    azure = run_demo(store, None, plan("azure.csv", "azure"), [], SIM)
    return store, mooncake, azure


def test_each_trace_request_is_stored_once_at_its_scaled_offset_with_its_expected_reuse(runs):
    store, mooncake, _ = runs
    rows = sql(store, f"SELECT trace_line, trace_offset_ns, expected_cached_tokens, output_tokens, prompt_tokens "
                      f"FROM siliconbench.requests WHERE run_id = '{mooncake}' ORDER BY trace_line")
    assert [int(r[0]) for r in rows] == list(range(1, 13))
    assert [int(r[1]) for r in rows] == [m["timestamp"] * 1_000_000 // 2 for m in MOONCAKE]  # rate x2
    assert [(int(r[3]), int(r[4])) for r in rows] == [(m["output_length"], m["input_length"]) for m in MOONCAKE]
    assert [int(r[2]) for r in rows][:6] == [0, 0, 512, 0, 0, 1024]


def test_the_trace_step_says_how_the_trace_was_replayed(runs):
    store, mooncake, azure = runs
    [[mode, fmt, block, rate_scale]] = sql(store, "SELECT mode, trace_format, trace_block_size, trace_rate_scale "
                                                  f"FROM siliconbench.steps WHERE run_id = '{mooncake}'")
    assert (mode, fmt, block, float(rate_scale)) == ("trace", "mooncake", "512", 2.0)
    [[file]] = sql(store, f"SELECT trace_file FROM siliconbench.runs WHERE run_id = '{azure}' AND phase = 'start'")
    assert file.endswith("azure.csv")


def report(store: str, run_id: str, fmt: str) -> str:
    return collector("report", "--run", run_id, "--format", fmt, "--store", store)


def test_the_json_report_has_the_replay_and_its_arrival_curve(runs):
    store, mooncake, _ = runs
    tables = {t["key"]: t for t in json.loads(report(store, mooncake, "json"))["tables"]}
    [replay] = [dict(zip(tables["trace_replay"]["columns"], row)) for row in tables["trace_replay"]["rows"]]
    assert (replay["format"], replay["requests"], replay["span s"]) == ("mooncake", 12, 0.68)
    assert replay["expected reuse (tokens)"] == sum([0, 0, 512, 0, 0, 1024, 0, 1024, 0, 1536, 512, 0])
    assert replay["dispatch lag p99"] >= replay["dispatch lag p50"] >= 0
    windows = [dict(zip(tables["trace_windows"]["columns"], row)) for row in tables["trace_windows"]["rows"]]
    assert sum(w["offered"] for w in windows) == sum(w["achieved"] for w in windows) == 12
    assert [w["offered"] for w in windows][:3] == [1, 2, 0]  # 0.05 s windows: arrivals at 0, 0.06, 0.08, 0.21 s
    assert all(w["SLO attainment"] == 100 for w in windows if w["offered"])


def test_a_trace_without_prefix_information_is_reported_as_such_in_every_format(runs):
    store, _, azure = runs
    said = "no prefix information in a azure trace: replayed without shared prefixes"
    for fmt in ("markdown", "html", "json"):
        assert said in report(store, azure, fmt), fmt
    [row] = list(csv.DictReader(io.StringIO(report(store, azure, "csv"))))
    assert row["trace_prefixes"] == said and row["trace_format"] == "azure"
    assert row["trace_windows"].startswith("0:2:2:")  # 0.1 s windows: arrivals at 0 and 0.06 s


def test_a_stored_runs_arrivals_export_as_a_siliconbench_trace_that_reads_back(runs):
    store, mooncake, _ = runs
    text = collector("export", "--table", "requests", "--format", "trace", "--run", mooncake, "--store", store)
    trace = parse_trace(text, "siliconbench")
    assert not trace.bad
    assert [(r.input_tokens, r.output_tokens) for r in trace.rows] == [
        (m["input_length"], m["output_length"]) for m in MOONCAKE]
    scheduled = [m["timestamp"] / 2e3 for m in MOONCAKE]  # rate x2, in seconds
    assert all(abs(r.offset_s - s) < 0.25 for r, s in zip(trace.rows, scheduled))  # within the dispatch lag
