"""Reasoning streams, tool calls and a three-model mix through the whole pipeline (simulator -> agent ->
gRPC -> collector -> chDB -> every report format), each a real process, against the simulator with the
truth known: which chunk is the first answer, how many reasoning tokens each request streamed, and which
model each request went to (the mix's draw is a function of seed, step and request number)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter

import pytest

from siliconbench.agent.sim import SimProfile
from siliconbench.collector.demo import run_demo
from siliconbench.core.plan import ModelMix, Plan

BASE = SimProfile().model
ADAPTERS = ("lora-sql", "lora-chat")
MIX = ModelMix(names=(BASE, *ADAPTERS), zipf=1.0)
REQUESTS = 12
REASONING = 5     # of OUTPUT tokens, streamed first
OUTPUT = 12
SILENT = 20       # reasoned in silence before a tool call, of TOOL_OUTPUT tokens
TOOL_OUTPUT = 28
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def collector(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def sql(store: str, query: str) -> list[list[str]]:
    return [line.split("\t") for line in collector("sql", query, "--store", store).strip().splitlines()[1:]]


def plan(**fields) -> Plan:
    return Plan(endpoint="chat", concurrency=(2,), requests_per_step=REQUESTS, repetitions=1, warmup_requests=1,
                input_tokens=32, seed=3, **fields)


SIM = ["--ttft-ms", "5", "--itl-ms", "2"]


@pytest.fixture(scope="module")
def answers_store(tmp_path_factory) -> str:
    """A store of this module's own (the embedded store is one process's at a time: each run is a child's)."""
    return f"chdb://{tmp_path_factory.mktemp('answers')}/data"


@pytest.fixture(scope="module")
def runs(answers_store) -> tuple[str, str, str]:
    store = answers_store
    mixed = run_demo(store, None, plan(output_tokens=OUTPUT, models=MIX), [],
                     [*SIM, "--reasoning-tokens", str(REASONING), "--reasoning-field", "reasoning_content",
                      "--adapters", ",".join(ADAPTERS), "--adapter-load-ms", "300"])
    tools = run_demo(store, None, plan(output_tokens=TOOL_OUTPUT, extra={"tools": TOOLS}), [],
                     [*SIM, "--reasoning-tokens", str(SILENT), "--no-reasoning-streamed"])
    return store, mixed, tools


def test_the_first_answer_is_the_chunk_after_the_reasoning_in_every_request(runs):
    store, mixed, _ = runs
    [[requests, exact, reasoning, answers, usage]] = sql(store, f"""
        SELECT count(), countIf(first_answer_ns = chunk_offset_ns[{REASONING + 1}]
                                AND first_reasoning_ns = chunk_offset_ns[1] AND ttft_ns = first_reasoning_ns),
               groupUniqArray(countEqual(chunk_kinds, 1)), groupUniqArray(countEqual(chunk_kinds, 0)),
               groupUniqArray(output_tokens)
        FROM siliconbench.requests WHERE run_id = '{mixed}' AND error_class = ''""")
    assert int(requests) == int(exact) == REQUESTS
    assert (reasoning, answers, usage) == (f"[{REASONING}]", f"[{OUTPUT - REASONING}]", f"[{OUTPUT}]")


def test_each_request_went_to_the_model_the_mix_drew_for_it(runs):
    store, mixed, _ = runs
    stored = dict(sql(store, f"SELECT request_id, model FROM siliconbench.requests WHERE run_id = '{mixed}'"))
    assert stored == {f"{mixed}/0/{i}": MIX.pick(3, 0, i) for i in range(REQUESTS)}


def answer_rows(store: str, run_id: str) -> list[dict]:
    report = json.loads(collector("report", "--run", run_id, "--format", "json", "--store", store))
    table = next(t for t in report["tables"] if t["key"] == "answers")
    return [dict(zip(table["columns"], row)) for row in table["rows"]]


def test_the_json_report_splits_the_figures_by_model_exactly(runs):
    store, mixed, _ = runs
    expected = Counter(MIX.pick(3, 0, i) for i in range(REQUESTS))
    rows = answer_rows(store, mixed)
    assert {r["model"]: r["requests"] for r in rows} == expected
    for r in rows:
        n = expected[r["model"]]
        assert (r["reasoning tokens"], r["reasoning tokens/request"]) == (n * REASONING, REASONING)
        assert (r["output tokens (usage)"], r["chunks (reasoning + answer)"]) == (n * OUTPUT, n * OUTPUT)
        assert r["TTFA p50"] > r["TTFT p50"]
        assert (r["silent reasoning"], r["tool calls"], r["usage ≠ chunks"]) == (0, 0, "")


def test_each_adapters_first_request_is_reported_apart_from_its_warm_ones(runs):
    store, mixed, _ = runs
    report = json.loads(collector("report", "--run", mixed, "--format", "json", "--store", store))
    table = next(t for t in report["tables"] if t["key"] == "first_requests")
    first = {row[table["columns"].index("model")]: dict(zip(table["columns"], row)) for row in table["rows"]}
    assert set(first) == set(MIX.names)
    for adapter in ADAPTERS:  # the simulator loads each adapter at its first request: 300 ms
        assert first[adapter]["first − warm"] >= 300 - 50, first[adapter]


def test_tool_calls_are_counted_with_parseable_arguments_after_reasoning_that_was_not_streamed(runs):
    store, _, tools = runs
    [row] = answer_rows(store, tools)
    assert (row["requests"], row["tool calls"], row["tool calls, arguments not JSON"]) == (REQUESTS, REQUESTS, 0)
    assert row["silent reasoning"] == REQUESTS and row["reasoning tokens"] == 0
    assert row["TTFA p50"] is None and row["tool-call turn p50"] >= row["TTFT p50"]
    assert row["output tokens (usage)"] == REQUESTS * TOOL_OUTPUT
    assert row["chunks (reasoning + answer)"] == 0  # every chunk was a tool call
    [[finish]] = sql(store, f"SELECT groupUniqArray(finish_reason) FROM siliconbench.requests WHERE run_id = '{tools}'")
    assert finish == "['tool_calls']"


@pytest.mark.parametrize("fmt", ["markdown", "csv", "html"])
def test_every_format_shows_time_to_first_answer_per_model(runs, fmt):
    store, mixed, _ = runs
    text = collector("report", "--run", mixed, "--format", fmt, "--store", store)
    if fmt != "csv":
        assert "TTFA p50" in text and "reasoning ITL p50" in text and "answer ITL p50" in text
    assert all(name in text for name in MIX.names)
    if fmt == "csv":
        [point] = csv.DictReader(io.StringIO(text))
        json_rows = {r["model"]: r for r in answer_rows(store, mixed)}
        for model in MIX.names:
            assert float(point[f"{model}:ttfa_p50_ms"]) == pytest.approx(json_rows[model]["TTFA p50"])
            assert int(float(point[f"{model}:reasoning_tokens"])) == json_rows[model]["reasoning tokens"]


def test_a_datasets_chat_prompts_bring_their_own_tools(answers_store, tmp_path):
    store = answers_store
    dataset = tmp_path / "turns.jsonl"
    question = [{"role": "user", "content": "which table holds the orders?"}]
    dataset.write_text(json.dumps({"messages": question, "tools": TOOLS}) + "\n" + json.dumps({"messages": question})
                       + "\n")
    run_id = run_demo(store, None, plan(output_tokens=OUTPUT, dataset=str(dataset)), [], SIM)
    [row] = answer_rows(store, run_id)
    # request k sends the dataset's prompt k (mod 2): half the requests offer the tool, and the model calls it
    assert (row["requests"], row["tool calls"], row["tool calls, arguments not JSON"]) == (REQUESTS, REQUESTS // 2, 0)
    assert row["chunks (reasoning + answer)"] == REQUESTS // 2 * OUTPUT
