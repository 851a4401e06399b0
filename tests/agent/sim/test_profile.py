"""SimProfile validation."""

from __future__ import annotations

import pytest

from siliconbench.agent.sim import InvalidSimProfile, SimProfile, create_app


def test_default_profile_is_valid():
    SimProfile().validate()


@pytest.mark.parametrize(("field", "bad"), [
    ("ttft_ms", -1.0), ("itl_ms", float("nan")), ("ttft_per_prompt_token_ms", float("inf")),
    ("slowdown_per_stream", -0.1), ("tokens_per_chunk", 0), ("max_model_len", 0), ("ping_every_chunks", -1),
    ("tokens_per_chunk", 1.5), ("model", " "),
])
def test_bad_value_is_rejected_naming_the_field(field, bad):
    with pytest.raises(InvalidSimProfile, match=field):
        SimProfile(**{field: bad}).validate()


def test_all_bad_fields_are_reported_at_once():
    with pytest.raises(InvalidSimProfile) as e:
        SimProfile(ttft_ms=-1, itl_ms=-1).validate()
    assert "ttft_ms" in str(e.value) and "itl_ms" in str(e.value)


def test_create_app_refuses_an_invalid_profile():
    with pytest.raises(ValueError, match="tokens_per_chunk"):
        create_app(SimProfile(tokens_per_chunk=0))
