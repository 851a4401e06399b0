"""Which search answers for a candidate, and the capacity of one node at the SLOs, with a lower bound.

A search answers for the plan when it measured the same workload (demand.Workload) and SLOs at least as
strict: every objective asked for, with a limit no looser (a search with more objectives is stricter
still). Of the searches that answer for a candidate (instance type, scenario, model), a rate search is
preferred to a concurrency search (it measured requests/s directly), then the newest.

Capacity per node, in requests/s:
- rate search: the boundary rate, offered and carried within the SLOs;
- concurrency search: Little's law, the boundary's streams ÷ the mean E2E of the boundary probe's own
  successful requests;
and its one-sided 95 % lower bound: the rate × λ_L(n) / n, with n the boundary probe's completed requests
and λ_L(n) the exact lower bound of a Poisson count of n (a search of several nodes: its weakest node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from siliconbench.collector.plan.demand import Workload
from siliconbench.collector.plan.evidence import NodeAnswer, Searched

CONFIDENCE = 0.95
_Z = 1.6448536269514722  # the standard normal's 95 % quantile
_EXACT_UP_TO = 1000  # counts above: Wilson-Hilferty's approximation (relative error under 1e-4 there)


def _poisson_cdf(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam), summed in log space."""
    log_lam = math.log(lam)
    return sum(math.exp(i * log_lam - lam - math.lgamma(i + 1)) for i in range(k + 1))


def poisson_lower(n: int, confidence: float = CONFIDENCE) -> float:
    """The one-sided lower confidence bound of a Poisson mean from a count of `n`: the λ with
    P(X >= n | λ) = 1 - confidence (half the chi-square quantile of 2n degrees of freedom); 0 for n = 0."""
    if n <= 0:
        return 0.0
    if n > _EXACT_UP_TO:
        return n * (1 - 1 / (9 * n) - _Z / (3 * math.sqrt(n))) ** 3
    low, high = 0.0, float(n)
    for _ in range(100):  # P(X <= n - 1 | λ) falls as λ grows: bisect to where it equals `confidence`
        mid = (low + high) / 2
        if _poisson_cdf(n - 1, mid) > confidence:
            low = mid
        else:
            high = mid
    return (low + high) / 2


@dataclass(frozen=True, slots=True)
class Capacity:
    """One node's capacity at the SLOs: requests/s and output tokens/s, each with its lower bound, the
    completed requests behind the bound, and the arithmetic in words."""

    rps: float
    rps_low: float
    tps: float
    tps_low: float
    requests: int
    how: str
    agent_id: str

    def in_unit(self, unit: str, low: bool = False) -> float:
        if unit == "tok/s":
            return self.tps_low if low else self.tps
        return self.rps_low if low else self.rps


def node_capacity(search: Searched, node: NodeAnswer) -> Capacity | None:
    """The node's capacity (None: no load within the SLOs, or no boundary probe to measure it by)."""
    probe = node.probe
    if not node.found or probe is None or probe.requests <= 0:
        return None
    planned_tokens = float(search.plan.output_tokens) if search.plan is not None else 0.0
    if search.control == "rate":
        rps = node.boundary
        tokens = planned_tokens or (node.output_tps / node.rps if node.rps > 0 else 0.0)
        how = (f"rate search: {rps:,.4g} req/s offered and carried within the SLOs "
               f"(completed at {node.rps:,.4g} req/s)")
    else:
        if not probe.e2e_s:
            return None
        rps = node.boundary / probe.e2e_s
        tokens = probe.output_tokens or planned_tokens
        how = (f"concurrency search, converted by Little's law: {node.boundary:g} streams ÷ mean E2E "
               f"{probe.e2e_s:.3g} s of the boundary probe's own requests = {rps:,.4g} req/s (its requests "
               f"completed at {node.rps:,.4g} req/s)")
    share = poisson_lower(probe.requests) / probe.requests
    how += (f"; lower bound × {share:.3f} (one-sided 95 % Poisson bound on its {probe.requests} completed "
            f"requests over {probe.seconds:.1f} s); {tokens:g} output tokens per request")
    return Capacity(rps, rps * share, rps * tokens, rps * tokens * share, probe.requests, how, node.agent_id)


def search_capacity(search: Searched) -> Capacity | None:
    """A search's capacity per node: its weakest node's (None when no node has one)."""
    capacities = [c for c in (node_capacity(search, n) for n in search.nodes) if c is not None]
    return min(capacities, key=lambda c: c.rps, default=None)


def slo_gaps(search: Searched, limits: dict[str, float]) -> list[str]:
    """Why the search's SLOs are not at least as strict as `limits` (empty: they are)."""
    theirs = search.limits
    gaps = []
    for key, limit in limits.items():
        if key not in theirs:
            gaps.append(f"it did not test {key}")
        elif theirs[key] > limit:
            gaps.append(f"its {key}<={theirs[key]:g} is looser than {key}<={limit:g}")
    return gaps


@dataclass(frozen=True, slots=True)
class Answering:
    """The search chosen for a candidate; `borrowed`: how its workload differs (--allow-other-workload)."""

    search: Searched
    borrowed: tuple[str, ...] = ()


def choose(searches: list[Searched], workload: Workload, limits: dict[str, float],
           allow_other_workload: bool) -> tuple[Answering | None, list[str]]:
    """The search that answers for one candidate's `searches` (module docstring), and, when none does, why
    each kind of search falls short."""
    def preference(s: Searched) -> tuple[bool, object]:
        return s.control == "rate", s.started

    exact = [s for s in searches if not slo_gaps(s, limits) and not workload.differences(s.plan)]
    if exact:
        return Answering(max(exact, key=preference)), []
    other = [s for s in searches if not slo_gaps(s, limits)]
    if allow_other_workload and other:
        best = max(other, key=preference)
        return Answering(best, tuple(workload.differences(best.plan))), []
    reasons = sorted({f"search {s.search_id}: " + "; ".join(slo_gaps(s, limits) + workload.differences(s.plan))
                      for s in searches})
    return None, reasons
