"""Plan files (YAML/TOML), shorthands and explicit steps, validated once with errors that name the key."""

import json

import pytest

from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan, StepSpec, load_plan, parse_slo, plan_from_mapping, with_overrides


def test_defaults_are_the_designed_sweep_with_three_repetitions():
    plan = Plan()
    assert [s.concurrency for s in plan.step_specs()] == [1, 4, 8, 16, 32]
    assert plan.repetitions == 3


def test_the_runs_total_steps_count_rate_and_explicit_steps_and_every_repetition():
    assert Plan().total_steps == 15
    assert Plan(concurrency=(1,), rates=(2.0, 4.0), repetitions=2).total_steps == 6
    assert Plan(steps=(StepSpec("closed", 8, 0.0, 64, 0.0),), concurrency=(1, 2, 4), repetitions=1).total_steps == 1


def test_yaml_plan_with_explicit_closed_and_open_steps(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("endpoint: chat\nslo: {ttft_ms: 500, tpot_ms: 50}\nsteps:\n"
                    "  - {concurrency: 8, requests: 64}\n"
                    "  - {rate: 4, arrival: constant, max_concurrency: 16, duration_s: 30}\n")
    plan = load_plan(str(path))
    assert plan.step_specs() == [StepSpec("closed", 8, 0.0, 64, 0.0), StepSpec("constant", 16, 4.0, 0, 30.0)]
    assert plan.endpoint == "chat" and plan.slo == {"ttft_ms": 500, "tpot_ms": 50}


def test_toml_plan_with_shorthand_rates(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text('concurrency = []\nrates = [1.5, 3]\narrival = "poisson"\nduration-s = 10\nrequests_per_step = 0\n')
    specs = load_plan(str(path)).step_specs()
    assert [(s.mode, s.rate_rps, s.duration_s, s.requests) for s in specs] == [("poisson", 1.5, 10.0, 0), ("poisson", 3.0, 10.0, 0)]


@pytest.mark.parametrize("text, key", [
    ("concurency: [1]\n", "concurency: unknown key \\(did you mean concurrency\\?\\)"),
    ("steps:\n  - {concurrency: 0, requests: 3}\n", "steps.0: concurrency must be >= 1"),
    ("steps:\n  - {rate: 2}\n", "bound the step"),
    ("steps:\n  - {concurrency: 2, requests: 3, arrival: poisson}\n", "open-loop"),
    ("endpoint: embeddings\n", "endpoint"),
    ("slo: {ttft: 5}\n", "slo"),
])
def test_bad_plans_name_the_key(tmp_path, text, key):
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_plan(str(path))


def test_flags_override_a_plan_file_only_when_given():
    plan = with_overrides(Plan(output_tokens=64), output_tokens=None, repetitions=1)
    assert (plan.output_tokens, plan.repetitions) == (64, 1)


def test_slo_flag():
    assert parse_slo("ttft_ms=500, tpot-ms=50") == {"ttft_ms": 500.0, "tpot_ms": 50.0}
    with pytest.raises(ConfigError):
        parse_slo("ttft_ms")


def test_deployed_plan_still_loads():
    plan = load_plan("deploy/node/plan.yaml")
    assert plan.repetitions == 3 and len(plan.step_specs()) == 5


def test_plan_json_reads_back_as_the_same_plan():
    plan = Plan(steps=(StepSpec("closed", 4, 0.0, 10, 0.0), StepSpec("poisson", 8, 2.5, 0, 5.0)),
                slo={"ttft_ms": 500})
    assert plan_from_mapping(json.loads(plan.to_json()), "json") == plan


@pytest.mark.parametrize("key, value, problem", [
    ("repetitions", 2.5, "repetitions: must be a valid integer, got 2.5"),
    ("seed", "abc", "seed: must be a valid integer, got 'abc'"),
    ("request_timeout_s", True, "request_timeout_s: must be a valid number, got True"),
    ("input_tokens", "512", "input_tokens: must be a valid integer, got '512'"),
    ("token_id_prompts", "yes", "token_id_prompts: must be a valid boolean, got 'yes'"),
    ("workers", 100_000, "workers: must be auto or a number of processes from 1 to 256, got 100000"),
    ("workers", "4", "workers: must be auto or a number of processes from 1 to 256, got '4'"),
    ("concurrency", [1e9], "concurrency.0: must be a valid integer"),
    ("concurrency", [10**9], "concurrency.0: must be less than or equal to 10000"),
    ("duration_s", float("inf"), "duration_s: must be a finite number"),
    ("steps", {"concurrency": 1}, "steps: must be a list"),
    ("steps", [5], "steps.0: must be a mapping, got 5"),
])
def test_a_value_of_the_wrong_type_or_size_is_refused_naming_its_key(key, value, problem):
    with pytest.raises(ConfigError) as caught:
        plan_from_mapping({key: value}, "plan file p.yaml")
    assert str(caught.value).startswith("plan file p.yaml: ") and problem in str(caught.value)


def test_every_problem_is_reported_at_once_with_its_key_path():
    data = {"repetitions": 2.5, "seed": "abc", "wokers": 2,
            "steps": [{"concurrency": 8, "requests": 64}, {"rate": 4, "duration_s": 30}, {"rate": -1, "requests": 2}]}
    with pytest.raises(ConfigError) as caught:
        plan_from_mapping(data, "plan file p.yaml")
    message = str(caught.value)
    assert message.startswith("plan file p.yaml: 4 problems: ") and "\n" not in message
    for problem in ("repetitions: must be a valid integer", "seed: must be a valid integer",
                    "steps.2.rate: must be greater than or equal to 0", "wokers: unknown key (did you mean workers?)"):
        assert problem in message


def test_integers_are_numbers_but_nothing_else_is_coerced():
    plan = plan_from_mapping({"request_timeout_s": 600, "rates": [2], "concurrency": []}, "p")
    assert (plan.request_timeout_s, plan.rates) == (600.0, (2.0,))


def test_explicit_steps_replace_the_shorthands_and_keep_their_order():
    plan = plan_from_mapping({"concurrency": [1, 2], "steps": [{"rate": 3, "requests": 5},
                                                               {"concurrency": 2, "duration_s": 1}]}, "p")
    assert [s.label() for s in plan.step_specs()] == ["poisson rate=3/s", "concurrency=2"]


def test_plan_built_in_code_is_validated_too():
    with pytest.raises(ValueError, match="repetitions"):
        Plan(repetitions=0)


def test_flag_overrides_name_the_bad_option():
    with pytest.raises(ConfigError, match=r"options: 2 problems: --repetitions: .*; --workers: "):
        with_overrides(Plan(), repetitions=0, workers=0)


def test_rates_alone_run_only_rate_steps():
    plan = plan_from_mapping({"rates": [4, 8]}, "p")
    assert [s.label() for s in plan.step_specs()] == ["poisson rate=4/s", "poisson rate=8/s"]


def test_rates_with_concurrency_run_both_concurrency_first():
    plan = plan_from_mapping({"rates": [4], "concurrency": [2]}, "p")
    assert [s.label() for s in plan.step_specs()] == ["concurrency=2", "poisson rate=4/s"]
