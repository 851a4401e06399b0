"""Every plan value is bounded (siliconbench.core.bounds) and `extra` cannot break the measurement
(siliconbench.core.extra): a plan file and the agent's flags go through the same model, and every problem is
named at once with its key path (or flag) and its bound, before any request."""

from __future__ import annotations

import pytest

from siliconbench.agent.cli import app
from siliconbench.core import bounds
from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan, load_plan, plan_from_mapping
from tests.programs import run_program

# (plan key, its flag, an absurd value in flag syntax, the same in YAML, what the error says)
ABSURD = [
    ("requests_per_step", "1000000000000", "1000000000000", "must be less than or equal to 1000000"),
    ("repetitions", "1000000000", "1000000000", "must be less than or equal to 1000"),
    ("duration_s", "1e12", "1000000000000.0", "must be less than or equal to 86400"),
    ("request_timeout_s", "1e9", "1000000000.0", "must be less than or equal to 3600"),
    ("rates", "1e9", "[1000000000.0]", "must be less than or equal to 10000"),
    ("warmup_requests", "1000000000000", "1000000000000", "must be less than or equal to 1000000"),
    ("seed", "9" * 30, "9" * 30, "must be less than or equal to 9223372036854775807"),
    ("dataset_max_tokens", "1000000000", "1000000000", "must be less than or equal to 1048576"),
    ("slo", "ttft_ms=1e12", "{ttft_ms: 1000000000000.0}", "must be less than or equal to 86400000"),
]


def where(key: str) -> str:
    return {"rates": "rates.0", "slo": "slo.ttft_ms"}.get(key, key)


@pytest.mark.parametrize("key, flag_value, yaml_value, bound", ABSURD, ids=[a[0] for a in ABSURD])
def test_an_absurd_value_in_a_plan_file_is_refused_naming_its_key_and_bound(tmp_path, key, flag_value, yaml_value,
                                                                          bound):
    path = tmp_path / "plan.yaml"
    path.write_text(f"{key}: {yaml_value}\n")
    with pytest.raises(ConfigError) as caught:
        load_plan(str(path))
    assert f"{where(key)}: {bound}" in str(caught.value)


FLAGS = [a for a in ABSURD if a[0] != "slo"]  # --slo is read by the one SLO parser (core/slo.py), below


@pytest.mark.parametrize("key, flag_value, yaml_value, bound", FLAGS, ids=[a[0] for a in FLAGS])
def test_an_absurd_flag_is_refused_naming_the_flag_and_bound(key, flag_value, yaml_value, bound):
    code, lines = run_program(app, "run", f"--{key.replace('_', '-')}", flag_value)
    assert code == 2 and len(lines) == 1, lines
    assert f"--{key.replace('_', '-')}: {bound}" in lines[0]


def test_an_absurd_slo_flag_is_refused_naming_the_objective_and_bound():
    code, lines = run_program(app, "run", "--slo", "ttft_ms=1e12")
    assert code == 2 and len(lines) == 1, lines
    assert "--slo ttft_ms: the limit must be a number of milliseconds in (0, 86400000], got '1e12'" in lines[0]


def test_values_at_their_bounds_are_accepted():
    plan = plan_from_mapping({"requests_per_step": bounds.MAX_REQUESTS, "repetitions": bounds.MAX_REPETITIONS,
                              "duration_s": bounds.MAX_DURATION_S, "rates": [bounds.MAX_RATE_RPS],
                              "request_timeout_s": bounds.MAX_REQUEST_TIMEOUT_S,
                              "extra": {"max_tokens": bounds.MAX_TOKENS}}, "p")
    assert plan.rates == (bounds.MAX_RATE_RPS,)


def test_explicit_steps_are_bounded_too():
    with pytest.raises(ConfigError) as caught:
        plan_from_mapping({"steps": [{"rate": 1e9, "requests": 10**12}, {"concurrency": 1, "duration_s": 1e12}]}, "p")
    message = str(caught.value)
    assert "steps.0.rate: must be less than or equal to 10000" in message
    assert "steps.0.requests: must be less than or equal to 1000000" in message
    assert "steps.1.duration_s: must be less than or equal to 86400" in message


def test_every_absurd_value_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        plan_from_mapping({"requests_per_step": 10**12, "repetitions": 10**9, "duration_s": 1e12,
                           "request_timeout_s": 1e9, "rates": [1e9],
                           "extra": {"stream": False, "n": 1000, "max_tokens": 10**9}}, "plan file p.yaml")
    message = str(caught.value)
    assert message.startswith("plan file p.yaml: 8 problems: ") and "\n" not in message


@pytest.mark.parametrize("extra, problem", [
    ({"stream": False}, "extra.stream: every request is streamed; remove it"),
    ({"stream": True}, "extra.stream: every request is streamed"),
    ({"stream_options": {"include_usage": False}}, "extra.stream_options: the agent asks for usage on every chunk"),
    ({"n": 1000}, "extra.n: must be 1, got 1000: the agent times one choice per request"),
    ({"best_of": 4}, "extra.best_of: must be 1, got 4"),
    ({"echo": True}, "extra.echo: must be false, got True: an echoed prompt would be timed as the first token"),
    ({"max_tokens": 10**9}, "extra.max_tokens: must be less than or equal to 1048576, got 1000000000"),
    ({"max_completion_tokens": 0}, "extra.max_completion_tokens: must be greater than or equal to 1"),
    ({"max_tokens": 1e9}, "extra.max_tokens: must be a valid integer, got 1000000000.0"),
    ({"ignore_eos": "false"}, "extra.ignore_eos: must be a valid boolean, got 'false'"),
    ({"model": "other"}, "extra.model: give the plan's model instead"),
    ({"prompt": [1, 2]}, "extra.prompt: the agent builds the prompts"),
    ({"logit_bias": {"5": float("nan")}}, "extra: logit_bias.5: nan is not a JSON number"),
    ({"stop": list(range(bounds.MAX_EXTRA_VALUES))}, "extra: holds more than 1000 values"),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else "")
def test_extra_keys_that_break_the_measurement_are_refused_with_the_reason(extra, problem):
    with pytest.raises(ConfigError) as caught:
        plan_from_mapping({"extra": extra}, "p")
    assert problem in str(caught.value)


def test_extra_request_fields_that_keep_the_measurement_are_passed_as_they_are():
    extra = {"n": 1, "best_of": 1, "echo": False, "ignore_eos": False, "max_tokens": 500, "min_tokens": 8,
             "temperature": 0.7, "top_p": 0.9, "logprobs": 5, "stop": ["\n\n"], "sim_stop_after": 3,
             "chat_template_kwargs": {"enable_thinking": False}}
    assert plan_from_mapping({"extra": extra}, "p").extra == extra


def test_a_yaml_date_in_extra_is_not_sent_as_json(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("extra: {seed_date: 2026-12-07}\n")
    with pytest.raises(ConfigError, match="extra: seed_date: a date is not a JSON value; quote it"):
        load_plan(str(path))


def test_a_yaml_alias_bomb_in_extra_is_refused_before_it_is_expanded(tmp_path):
    """Nine levels of nine aliases: 387 million values once expanded (as json.dumps of the request would)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "plan.yaml"
    path.write_text("extra:\n" + "".join(f"  {line}\n" for line in lines))
    with pytest.raises(ConfigError, match="extra: holds more than 1000 values"):
        load_plan(str(path))


def test_a_plan_file_past_its_bound_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("repetitions: 1\n" + "#" * (5 << 20) + "\n")  # a valid plan, 5 MB of it a comment
    with pytest.raises(ConfigError, match=f"plan file {path} is larger than 1 MiB; a plan is a few hundred bytes"):
        load_plan(str(path))


def test_a_plan_the_run_cannot_store_is_refused_naming_the_bound():
    with pytest.raises(ConfigError, match=r"the plan is \d+ characters as JSON; a run stores at most 65536"):
        plan_from_mapping({"extra": {"stop": ["x" * 70_000]}}, "p")


def test_the_default_plan_is_within_every_bound():
    assert Plan() == plan_from_mapping({}, "p")
