"""What a plan's `extra` (fields merged into every request body) may set: any sampling or server option,
except what would break the measurement itself. Each refusal is named by its key path with its reason.

- `stream`, `stream_options`: every request is streamed with usage on every chunk (continuous_usage_stats);
  without them there is no chunk timing and no token count per chunk.
- `model`, `prompt`, `messages`: the plan's `model` names the model; the agent builds prompts of the asked
  length (or sends the dataset's).
- `n`, `best_of`: only 1. The agent times one choice per request; more interleave chunks of several
  completions in one stream.
- `echo`: only false. An echoed prompt arrives before the first generated token and would be timed as it.
- `max_tokens`, `max_completion_tokens`, `min_tokens`: whole numbers up to MAX_TOKENS (the stream is bounded
  by what the request asks for: agent/stream.py).
- `ignore_eos`: true or false. False is a legitimate workload (the model's own output lengths): a request
  that ends early is counted as an early finish in its step, never as an error.

Every value must be JSON (YAML dates, say, are not), and `extra` holds at most MAX_EXTRA_VALUES values.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12 on

from siliconbench.core.bounds import MAX_EXTRA_VALUES, MAX_TOKENS
from siliconbench.core.config import Bool, Int, invalid


def _refused(why: str) -> AfterValidator:
    def refuse(value: Any) -> Any:
        raise invalid(why)
    return AfterValidator(refuse)


def _only(allowed: object, why: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if value != allowed:
            raise invalid(f"must be {str(allowed).lower()}, got {value!r}: {why}")
        return value
    return AfterValidator(check)


_ONE_CHOICE = "the agent times one choice per request"
_MaxTokens = Annotated[Int, Field(ge=1, le=MAX_TOKENS)]


class RequestExtra(TypedDict, total=False):
    """The request fields `extra` may not set freely; any other key is passed as it is."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]  # pydantic's way; mypy knows no such key

    stream: Annotated[Any, _refused("every request is streamed; remove it")]
    stream_options: Annotated[Any, _refused("the agent asks for usage on every chunk to count tokens per chunk; "
                                            "remove it")]
    model: Annotated[Any, _refused("give the plan's model instead")]
    prompt: Annotated[Any, _refused("the agent builds the prompts (input_tokens, or dataset); remove it")]
    messages: Annotated[Any, _refused("the agent builds the prompts (input_tokens, or dataset); remove it")]
    n: Annotated[Int, _only(1, _ONE_CHOICE)]
    best_of: Annotated[Int, _only(1, _ONE_CHOICE)]
    echo: Annotated[Bool, _only(False, "an echoed prompt would be timed as the first token")]
    max_tokens: _MaxTokens
    max_completion_tokens: _MaxTokens
    min_tokens: Annotated[Int, Field(ge=0, le=MAX_TOKENS)]
    ignore_eos: Bool


def json_values(extra: dict) -> dict:
    """`extra` itself, once every value in it is JSON and there are at most MAX_EXTRA_VALUES of them."""
    seen = 0
    pending: list[tuple[str, Any]] = [(str(key), value) for key, value in extra.items()]
    if not all(isinstance(key, str) for key in extra):
        raise invalid("keys must be text")
    while pending:
        path, value = pending.pop()
        seen += 1
        if seen > MAX_EXTRA_VALUES:
            raise invalid(f"holds more than {MAX_EXTRA_VALUES} values; request fields are a handful")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise invalid(f"{path}: keys must be text, got {key!r}")
                pending.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{i}", item) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise invalid(f"{path}: {value} is not a JSON number")
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise invalid(f"{path}: a {type(value).__name__} is not a JSON value; quote it")
    return extra
