"""How a search runs (`siliconbench-agent search`'s flags; a plan file's `search:` section), validated
when built. The search itself is the agent's (siliconbench.agent.search); the plan carries these so that a
fleet run (`run start --plan`) makes every selected node search at once.

    search:
      slo: "ttft_p99_ms<=500,itl_p99_ms<=50"
      control: concurrency        # or rate (open loop with the plan's arrival)
      start: 1
      max: 512
      tolerance: 0.05
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.core.config import STRICT, Int, NonNegativeFloat, Str, invalid
from siliconbench.core.errors import ConfigError
from siliconbench.core.slo import parse_slos

PASS, UNDECIDED = "pass", "undecided"  # a probe's verdicts that the answer reads (agent/search/judge.py)
FROM_STORE = "collector"  # SearchProbe.readings_from of a probe judged on readings read from the collector's store


@dataclass(frozen=True, slots=True, config=STRICT)
class SearchOptions:
    """How a search runs; `search`'s flags are made from the first four fields."""

    control: Annotated[Literal["concurrency", "rate"], Field(description="What the search varies: streams in flight (closed loop) or offered requests/s (open loop, the plan's --arrival).")] = "concurrency"
    start: Annotated[NonNegativeFloat, Field(description="The first probe's value; the search doubles it until a probe fails.")] = 1.0
    max: Annotated[NonNegativeFloat, Field(description="The largest value probed.")] = 1024.0
    tolerance: Annotated[NonNegativeFloat, Field(description="Bisect until the bracket is narrower than this share of its lower end (for concurrency, at least one stream).")] = 0.05
    extensions: Annotated[Int, Field(ge=0, description="Extra steps a probe may take to decide, each doubling its requests.")] = 3
    verify_factor: Annotated[Int, Field(ge=1, description="A verification probe's requests, times a probe's.")] = 3
    min_requests: Annotated[Int, Field(ge=1, description="Requests a probe sends at least.")] = 16

    @model_validator(mode="after")
    def _consistent(self) -> SearchOptions:
        if not 0 < self.tolerance < 1:
            raise invalid(f"tolerance must be a share in (0, 1), e.g. 0.05; got {self.tolerance:g}")
        if not self.start > 0:
            raise invalid(f"start must be > 0, got {self.start:g}")
        if self.start > self.max:
            raise invalid(f"start {self.start:g} is above max {self.max:g}")
        if self.control == "concurrency" and (self.start != int(self.start) or self.max != int(self.max)):
            raise invalid("start and max count streams for control concurrency: give whole numbers")
        return self

    def step_above(self, value: float) -> float:
        """The resolution at `value`: the tolerance's share of it, at least one stream."""
        return step_above(self.control, self.tolerance, value)


def step_above(control: str, tolerance: float, value: float) -> float:
    """A search's resolution at `value`: the tolerance's share of it, for concurrency at least one stream."""
    step = tolerance * value
    return max(1.0, float(math.ceil(step))) if control == "concurrency" else step


def undecided_between(control: str, tolerance: float, boundary: float | None,
                      verdicts: Iterable[tuple[float, str]]) -> tuple[float | None, list[float]]:
    """Where the probes' (value, verdict)s leave a search's answer undecided: the smallest value that
    failed above the `boundary` (else the largest undecided one) and the undecided values below it, when
    there are any and it lies further above the boundary than the tolerance; else (None, [])."""
    judged = list(verdicts)
    low = -math.inf if boundary is None else boundary
    high = min((v for v, name in judged if v > low and name not in (PASS, UNDECIDED)), default=math.inf)
    undecided = sorted({v for v, name in judged if name == UNDECIDED and low < v < high})
    if not undecided:
        return None, []
    to = high if high < math.inf else undecided[-1]
    if boundary is not None and to - boundary <= step_above(control, tolerance, boundary):
        return None, []
    return to, undecided


@dataclass(frozen=True, slots=True, config=STRICT)
class SearchPlan(SearchOptions):
    """A plan file's `search:` section: the SLOs and how to search."""

    slo: Str = ""

    @field_validator("slo")
    @classmethod
    def _slos(cls, value: str) -> str:
        try:
            parse_slos(value, flag="")
        except ConfigError as exc:
            raise invalid(str(exc)) from None
        return value
