"""A plan's `models:` section: requests spread over several served models by weight or Zipf popularity,
each request's model fixed by the seed, the step and its number."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import ModelMix, plan_from_mapping


def mix(**models) -> ModelMix:
    plan = plan_from_mapping({"models": models}, "plan")
    assert plan.models is not None
    return plan.models


def test_zipf_popularity_gives_the_ith_name_weight_one_over_i_to_the_s():
    assert mix(names=["base", "a", "b"], zipf=1.0).shares() == pytest.approx([6 / 11, 3 / 11, 2 / 11])


def test_weights_are_relative_and_no_weights_is_even():
    assert mix(names=["base", "a"], weights=[3, 1]).shares() == pytest.approx([0.75, 0.25])
    assert mix(names=["base", "a"]).shares() == pytest.approx([0.5, 0.5])


def test_each_requests_model_is_fixed_by_seed_step_and_number_and_follows_the_shares():
    models = mix(names=["base", "a", "b"], weights=[2, 1, 1])
    drawn = [models.pick(7, 0, i) for i in range(4000)]
    assert drawn == [models.pick(7, 0, i) for i in range(4000)]
    assert drawn != [models.pick(8, 0, i) for i in range(4000)]
    counts = Counter(drawn)
    assert abs(counts["base"] / 4000 - 0.5) < 0.03 and abs(counts["a"] / 4000 - 0.25) < 0.03


@pytest.mark.parametrize(("models", "problem"), [
    ({"names": ["a", "a"]}, "named once"),
    ({"names": ["a", "b"], "weights": [1]}, "one per name"),
    ({"names": ["a", "b"], "weights": [1, 1], "zipf": 1.0}, "not both"),
    ({"names": []}, "models.names"),
])
def test_a_bad_mix_is_named_in_one_line(models, problem):
    with pytest.raises(ConfigError, match=problem):
        plan_from_mapping({"models": models}, "plan")


def test_the_mix_is_stored_with_the_run_and_read_back():
    plan = plan_from_mapping({"models": {"names": ["base", "a"], "zipf": 1.2}}, "plan")
    assert plan_from_mapping(json.loads(plan.to_json()), "stored").models == plan.models
    assert plan.mixed_models == ("base", "a")
