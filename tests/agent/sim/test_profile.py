"""SimProfile validation: every bad field named at once, when the profile is built."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from siliconbench.agent.cli import app
from siliconbench.agent.sim import SimProfile
from tests.programs import run_program


def test_default_profile_is_valid():
    assert SimProfile().describe().startswith("model=siliconbench/sim-llama, ttft_ms=50.0")


@pytest.mark.parametrize(("field", "bad"), [
    ("ttft_ms", -1.0), ("itl_ms", float("nan")), ("ttft_per_prompt_token_ms", float("inf")),
    ("slowdown_per_stream", -0.1), ("tokens_per_chunk", 0), ("max_model_len", 0), ("ping_every_chunks", -1),
    ("tokens_per_chunk", 1.5), ("model", " "), ("itl_ms", "10"), ("max_model_len", True),
])
def test_bad_value_is_rejected_naming_the_field(field, bad):
    with pytest.raises(ValidationError) as caught:
        SimProfile(**{field: bad})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_all_bad_fields_are_reported_at_once():
    with pytest.raises(ValidationError) as caught:
        SimProfile(ttft_ms=-1, itl_ms=-1)
    assert [error["loc"] for error in caught.value.errors()] == [("ttft_ms",), ("itl_ms",)]


def test_the_sim_command_names_every_bad_flag_in_one_line():
    code, lines = run_program(app, "sim", "--itl-ms", "-1", "--tokens-per-chunk", "0")
    assert code == 2
    assert lines == [
        "error: options: 2 problems: --itl-ms: must be greater than or equal to 0, got -1.0; "
        "--tokens-per-chunk: must be greater than or equal to 1, got 0"]
