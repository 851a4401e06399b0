"""The simulator's timing and model settings (`SimProfile`), validated once at start-up."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


class InvalidSimProfile(ValueError):
    """A `SimProfile` field holds a value the simulator cannot serve; the message names the field and the fix."""


@dataclass(frozen=True)
class SimProfile:
    """How the simulated server times its output.

    Chunk `i` (0-based) of a stream is due at
    `arrival + ttft + sum(itl * slowdown(t_j) for j < i)`, where
    `ttft = (ttft_ms + ttft_per_prompt_token_ms * prompt_tokens) * slowdown(arrival)` and
    `slowdown = 1 + slowdown_per_stream * (active_streams - 1)` with the active count taken when each gap
    starts. `ttft_ms == itl_ms == 0` streams as fast as the server can write.
    """

    model: str = "siliconbench/sim-llama"
    ttft_ms: float = 50.0
    ttft_per_prompt_token_ms: float = 0.0
    itl_ms: float = 10.0
    tokens_per_chunk: int = 1
    slowdown_per_stream: float = 0.0
    max_model_len: int = 8192
    ping_every_chunks: int = 0

    def validate(self) -> None:
        """Raise `InvalidSimProfile` listing every bad field (all of them, not just the first)."""
        problems: list[str] = []
        if not self.model.strip():
            problems.append("model must be a non-empty served model name (e.g. 'siliconbench/sim-llama')")
        for name in ("ttft_ms", "ttft_per_prompt_token_ms", "itl_ms", "slowdown_per_stream"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f"{name} must be a number, got {value!r}")
            elif not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be a finite number >= 0, got {value!r}; use 0 to disable it")
        for name, minimum in (("tokens_per_chunk", 1), ("max_model_len", 1), ("ping_every_chunks", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                problems.append(f"{name} must be an integer >= {minimum}, got {value!r}")
        if problems:
            raise InvalidSimProfile("invalid simulator profile: " + "; ".join(problems))

    def describe(self) -> str:
        """One line `key=value, ...` for logs."""
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())
