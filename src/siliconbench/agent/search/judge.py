"""A probe's verdict from its own requests.

    pass            every SLO's upper bound is within its limit
    fail            an SLO's lower bound is over its limit, or a rate probe achieved too little of its rate
    inconclusive    some SLO's limit lies between its lower and upper bound: extended, then undecided
    undecided       still inconclusive after every extension: the data cannot tell, neither pass nor fail
    extend          some SLO has too few samples for a bound: extended, not judged
    over-saturated  the server's queue and TTFT grew through the probe: failed at once
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from siliconbench.core.search import PASS
from siliconbench.core.slo import ERROR_RATE, Objective
from siliconbench.core.slo_bounds import (percentile_bound, percentile_lower, percentile_point, proportion_bound,
                                          proportion_lower)
from siliconbench.core.wire import pb

# a rate probe whose requests completed at less than this share of the offered rate did not carry it
ACHIEVED_SHARE = 0.95
FAIL, INCONCLUSIVE, EXTEND, OVER_SATURATED = "fail", "inconclusive", "extend", "over-saturated"


@dataclass(frozen=True, slots=True)
class Reading:
    """One SLO at one probe: the point estimate, the upper bound and the lower (None: too few samples)."""

    objective: Objective
    point: float | None
    bound: float | None
    samples: int
    lower: float | None = None

    def show(self) -> str:
        o = self.objective
        bound = "no bound yet" if self.bound is None else f"bound {o.show(self.bound)}"
        point = "-" if self.point is None else o.show(self.point)
        return f"{o.label} {point} ({bound} of {o.show(o.limit)})"


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    reason: str
    readings: tuple[Reading, ...]

    @property
    def passed(self) -> bool:
        return self.name == PASS


def read(objective: Objective, records: Sequence[pb.RequestRecord]) -> Reading:
    if objective.metric == ERROR_RATE:
        failures = sum(1 for r in records if r.error_class)
        point = failures / len(records) if records else None
        n = len(records)
        return Reading(objective, point, proportion_bound(failures, n) if records else None, n,
                       proportion_lower(failures, n) if records else None)
    samples = objective.samples(records)
    return Reading(objective, percentile_point(samples, objective.q), percentile_bound(samples, objective.q),
                   len(samples), percentile_lower(samples, objective.q))


def readings_of(objectives: Sequence[Objective], records: Sequence[pb.RequestRecord]) -> tuple[Reading, ...]:
    """Each objective's reading over a probe's (steady) `records`, in order."""
    return tuple(read(o, records) for o in objectives)


def judge(objectives: Sequence[Objective], records: Sequence[pb.RequestRecord], *, offered_rps: float = 0.0,
          achieved_rps: float = 0.0, over_saturated: str = "", readings: Sequence[Reading] | None = None) -> Verdict:
    """The verdict on a probe's (steady) `records`, or on their `readings` where they were read elsewhere (the
    collector's store); a rate probe passes its `offered_rps` and `achieved_rps`, and `over_saturated` is why
    the server was seen over-saturated (empty: it was not)."""
    readings = tuple(readings) if readings is not None else readings_of(objectives, records)
    if over_saturated:
        return Verdict(OVER_SATURATED, over_saturated, readings)
    if offered_rps and achieved_rps < ACHIEVED_SHARE * offered_rps:
        return Verdict(FAIL, f"requests completed at {achieved_rps:.3g}/s of {offered_rps:.3g}/s offered", readings)
    over = [r for r in readings if r.lower is not None and r.lower > r.objective.limit]
    if over:
        return Verdict(FAIL, "; ".join(f"{r.objective.label} {r.objective.show(r.point or 0)}, lower bound "
                                       f"{r.objective.show(r.lower or 0)} > {r.objective.show(r.objective.limit)}"
                                       for r in over), readings)
    unbounded = [r for r in readings if r.bound is None]
    if unbounded:
        return Verdict(EXTEND, "too few samples for a bound: " + ", ".join(
            f"{r.objective.label} ({r.samples})" for r in unbounded), readings)
    loose = [r for r in readings if (r.bound or 0) > r.objective.limit]
    if loose:
        return Verdict(INCONCLUSIVE, "limit between the bounds: " + "; ".join(
            f"{r.show()}, lower bound {r.objective.show(r.lower)}" if r.lower is not None else r.show()
            for r in loose), readings)
    return Verdict(PASS, "every bound within its SLO", readings)
