"""Plan files (YAML/TOML), shorthands and explicit steps, validated once with errors that name the key."""

import pytest

from siliconbench.agent.errors import ConfigError
from siliconbench.core.plan import Plan, StepSpec, load_plan, parse_slo, with_overrides


def test_defaults_are_the_designed_sweep_with_three_repetitions():
    plan = Plan().validate()
    assert [s.concurrency for s in plan.step_specs()] == [1, 4, 8, 16, 32]
    assert plan.repetitions == 3


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
    ("concurency: [1]\n", "concurency"),
    ("steps:\n  - {concurrency: 0, requests: 3}\n", "concurrency must be >= 1"),
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
    from siliconbench.core.plan import plan_from_mapping
    import json

    plan = Plan(steps=(StepSpec("closed", 4, 0.0, 10, 0.0), StepSpec("poisson", 8, 2.5, 0, 5.0)),
                slo={"ttft_ms": 500}).validate()
    assert plan_from_mapping(json.loads(plan.to_json()), "json") == plan
