"""A plan's `trace:` section, validated when the plan is built: its format, scales, window and part, and the
plan around it (a trace replays token-id prompts on completions, from one process, as its own step)."""

import json

import pytest

from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import plan_from_mapping
from siliconbench.core.trace import TracePlan, node_part, window_bounds


def plan(**trace):
    return plan_from_mapping({"trace": {"file": "t.jsonl", "format": "mooncake", **trace}}, "plan file p.yaml")


def test_a_trace_section_is_read_with_its_defaults():
    trace = plan().trace
    assert trace == TracePlan(file="t.jsonl", format="mooncake")
    assert (trace.time_scale, trace.rate_scale, trace.block_size, trace.bad_lines) == (1.0, 1.0, 512, "auto")


def test_the_trace_survives_the_plans_json_stored_with_its_run():
    given = plan(window="10:20", part="2/3", rate_scale=4.0)
    assert plan_from_mapping(json.loads(given.to_json()), "stored").trace == given.trace


@pytest.mark.parametrize("key, value, message", [
    ("format", "sharegpt", "trace.format"),
    ("time_scale", 0, "trace.time_scale"),
    ("rate_scale", 5000, "trace.rate_scale"),
    ("window", "20:10", "ends before it starts"),
    ("window", "ten:20", "START:END"),
    ("part", "3/2", "NODE/NODES"),
    ("bad_lines", "ignore", "trace.bad_lines"),
    ("block_size", 0, "trace.block_size"),
])
def test_a_bad_trace_value_is_named_by_its_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        plan(**{key: value})


def test_stretch_is_time_scale_over_rate_scale():
    assert TracePlan(file="f", format="azure", time_scale=2.0, rate_scale=4.0).stretch == 0.5


def test_window_and_part_texts():
    assert window_bounds("") == (0.0, float("inf"))
    assert window_bounds(":30") == (0.0, 30.0)
    assert window_bounds("10:") == (10.0, float("inf"))
    assert node_part("") == (1, 1) and node_part("2/4") == (2, 4)


@pytest.mark.parametrize("extra, message", [
    ({"endpoint": "chat"}, "token-id prompts on completions"),
    ({"dataset": "d.jsonl"}, "token-id prompts on completions"),
    ({"workers": 4}, "one process"),
    ({"steps": [{"concurrency": 2, "requests": 4}]}, "the trace itself"),
])
def test_a_trace_plan_refuses_what_a_replay_cannot_do(extra, message):
    with pytest.raises(ConfigError, match=message):
        plan_from_mapping({"trace": {"file": "t", "format": "azure"}, **extra}, "plan")


def test_a_trace_step_needs_a_trace():
    with pytest.raises(ConfigError, match="arrival trace belongs to a plan with a trace"):
        plan_from_mapping({"steps": [{"rate": 2, "arrival": "trace", "requests": 4}]}, "plan")


def test_a_trace_plan_has_no_steps_until_the_agent_reads_its_trace_but_counts_one_per_repetition():
    assert plan().step_specs() == []
    assert plan().total_steps == 3  # what a fleet node reports as its steps before it reads the trace
