"""How a trace is replayed (`siliconbench-agent run --trace`'s flags; a plan file's `trace:` section),
validated when built. The replay itself is the agent's (siliconbench.agent.traces).

    trace:
      file: traces/mooncake.jsonl
      format: mooncake          # mooncake | azure | burstgpt | siliconbench
      time_scale: 1.0           # stretches the trace's clock (0.5: the same arrivals in half the time)
      rate_scale: 1.0           # multiplies the offered rate (2: twice the requests per second)
      window: "60:120"          # seconds of the trace, from its first arrival; empty: all of it
      bad_lines: auto           # auto (refuse over 1 % malformed), skip, refuse
      block_size: 512           # tokens behind each hash id (Mooncake: 512)
      part: "1/4"               # a fleet's node 1 of 4 (sessions kept together); empty: all of it

A trace replays as one open-loop step per repetition: each request at its (scaled) offset from the step's
start, with its own input and output lengths, whatever the plan's input_tokens and output_tokens say.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from siliconbench.core.bounds import MAX_PATH_CHARS, MAX_TOKENS
from siliconbench.core.config import STRICT, Int, PositiveFloat, Str, invalid

TRACE_FORMATS = ("mooncake", "azure", "burstgpt", "siliconbench")
# The share of malformed lines past which `bad_lines: auto` refuses the trace.
BAD_LINE_SHARE = 0.01
# A scale past 1,000 in either direction is a typo (seconds for milliseconds twice over).
MAX_SCALE = 1_000.0
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d*)?)?\s*:\s*(\d+(?:\.\d*)?)?\s*$")
_PART = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True, config=STRICT)
class TracePlan:
    """A trace to replay, and how."""

    file: Annotated[Str, Field(min_length=1, max_length=MAX_PATH_CHARS)]
    format: Literal["mooncake", "azure", "burstgpt", "siliconbench"]
    time_scale: Annotated[PositiveFloat, Field(le=MAX_SCALE)] = 1.0
    rate_scale: Annotated[PositiveFloat, Field(le=MAX_SCALE)] = 1.0
    window: Str = ""
    bad_lines: Literal["auto", "skip", "refuse"] = "auto"
    block_size: Annotated[Int, Field(ge=1, le=MAX_TOKENS)] = 512
    part: Str = ""

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        window_bounds(value)
        return value

    @field_validator("part")
    @classmethod
    def _part(cls, value: str) -> str:
        node_part(value)
        return value

    @property
    def stretch(self) -> float:
        """The factor a trace offset is multiplied by: the time scale over the rate scale."""
        return self.time_scale / self.rate_scale


def window_bounds(text: str) -> tuple[float, float]:
    """'60:120' -> (60.0, 120.0); ':30' -> (0, 30); '10:' and '' -> (10 or 0, inf). Seconds of the trace."""
    if not text:
        return 0.0, float("inf")
    match = _WINDOW.match(text)
    if match is None:
        raise invalid(f"window takes START:END in seconds of the trace, e.g. 60:120; got {text[:80]!r}")
    start = float(match.group(1) or 0.0)
    end = float(match.group(2)) if match.group(2) else float("inf")
    if not end > start:
        raise invalid(f"window {text!r} ends before it starts")
    return start, end


def node_part(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): node 2 of 4, from 1; '' -> (1, 1)."""
    if not text:
        return 1, 1
    match = _PART.match(text)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise invalid(f"part takes NODE/NODES with 1 <= NODE <= NODES, e.g. 2/4; got {text[:80]!r}")
    return int(match.group(1)), int(match.group(2))
