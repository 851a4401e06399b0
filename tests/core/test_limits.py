"""The store's limits of one value, as both sides check them (siliconbench/core/limits.py)."""

import pytest

from siliconbench.collector.schema import REQUESTS
from siliconbench.core.limits import MAX_ID_CHARS, MAX_TOKENS, number_fault, text_fault


@pytest.mark.parametrize("value, fault", [
    ("x" * MAX_ID_CHARS, None),
    ("x" * (MAX_ID_CHARS + 1), f"is {MAX_ID_CHARS + 1} characters long; the limit is {MAX_ID_CHARS}"),
    ("length\ud800", "is not valid UTF-8 (surrogates not allowed at character 6)"),
    ("é€😀", None),
])
def test_text_fault_names_length_and_encoding(value, fault):
    assert text_fault(value, MAX_ID_CHARS) == fault


@pytest.mark.parametrize("value, ok", [(0.0, True), (-1e300, True), (float("nan"), False), (float("-inf"), False)])
def test_number_fault_refuses_what_is_not_finite(value, ok):
    assert (number_fault(value) is None) == ok


def test_the_collector_checks_the_same_limits():
    assert REQUESTS.column("finish_reason").check.max_chars == MAX_ID_CHARS
    assert REQUESTS.column("prompt_tokens").check.high == MAX_TOKENS
