"""The plan: per candidate, the nodes the load needs, the fleet's $/hour and $/1M output tokens, cheapest
fleet first.

    nodes         = ceil(load × (1 + headroom) / capacity per node)   (in the load's own unit)
    nodes (low)   = the same with the capacity's lower bound
    fleet $/hour  = nodes × the instance type's price per hour
    $/1M output tokens at the planned load  = fleet $/hour ÷ (load in output tok/s × 3600) × 10⁶
    $/1M output tokens at full capacity     = fleet $/hour ÷ (nodes × capacity in output tok/s × 3600) × 10⁶

A load in requests/s is in output tokens/s at the workload's output tokens per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.plan.capacity import Answering, Capacity, choose, search_capacity
from siliconbench.collector.plan.demand import TOK, Load, Workload
from siliconbench.collector.plan.evidence import Searched, stored_searches, with_boundaries
from siliconbench.collector.plan.pricing import PriceBook
from siliconbench.collector.prices import Price, usd_per_million
from siliconbench.collector.store import Store
from siliconbench.core.slo import parse_slos

Candidate = tuple[str, str, str]  # instance type, scenario, model


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What to plan for: the load, its workload, the SLOs (`--slo` text), the candidate instance types (empty:
    every type with a stored search), the headroom share and the prices."""

    load: Load
    workload: Workload
    slo: str
    prices: PriceBook
    candidates: tuple[str, ...] = ()
    headroom: float = 0.2
    allow_other_workload: bool = False

    @property
    def limits(self) -> dict[str, float]:
        return {o.key: o.limit for o in parse_slos(self.slo)}

    @property
    def load_tps(self) -> float:
        """The load in output tokens/s."""
        return self.load.value if self.load.unit == TOK else self.load.value * self.workload.output_tokens


@dataclass(frozen=True, slots=True)
class Choice:
    """One candidate's fleet for the load."""

    instance_type: str
    scenario: str
    model: str
    capacity: Capacity
    nodes: int
    nodes_low: int | None  # None: the lower bound is zero (too few requests to bound it)
    price: Price | None
    usd_per_hour: float | None
    usd_per_million_at_load: float | None
    usd_per_million_at_capacity: float | None
    headroom: dict[str, float | None]  # per SLO asked: 1 - bound / limit at the boundary
    evidence: Searched
    borrowed: tuple[str, ...]  # how the evidence's workload differs (--allow-other-workload)
    notes: tuple[str, ...]

    @property
    def simulated(self) -> bool:
        return self.evidence.simulated


@dataclass(frozen=True, slots=True)
class Missing:
    """A candidate no stored search answers for, why, and the command that would measure it."""

    instance_type: str
    scenario: str
    model: str
    reasons: tuple[str, ...]
    command: str


@dataclass(frozen=True, slots=True)
class Unmet:
    """A candidate whose search found no load within the SLOs (or no boundary to measure capacity by)."""

    instance_type: str
    scenario: str
    model: str
    search_id: str
    simulated: bool
    reason: str


@dataclass(frozen=True, slots=True)
class PlanAnswer:
    request: PlanRequest
    choices: tuple[Choice, ...]
    missing: tuple[Missing, ...]
    unmet: tuple[Unmet, ...]
    warnings: tuple[str, ...]

    def recommendation(self) -> str:
        priced = [c for c in self.choices if c.usd_per_hour is not None]
        if not priced:
            if self.choices:
                return "no candidate with a measured capacity has a price: see each row's note"
            return "no stored search answers for this plan: see `missing` for the searches to run"
        c = priced[0]
        low = ("; the capacity's lower bound needs no more" if c.nodes_low == c.nodes
               else "; its lower bound is zero (too few requests)" if c.nodes_low is None
               else f"; {c.nodes_low} if the capacity's lower bound holds")
        at_load = c.usd_per_million_at_load
        return (f"{c.nodes} x {c.instance_type}{_scenario(c.scenario)}, ${c.usd_per_hour:,.2f}/h, "
                f"${at_load:,.2f} per 1M output tokens{low}" + (" (SIMULATED evidence)" if c.simulated else "")
                + (" (capacity BORROWED from another workload)" if c.borrowed else ""))


def _scenario(scenario: str) -> str:
    return f" (scenario {scenario})" if scenario else ""


def nodes_for(load: float, headroom: float, capacity: float) -> int | None:
    """ceil(load × (1 + headroom) / capacity); None when the capacity is zero."""
    if capacity <= 0:
        return None
    return max(1, math.ceil(load * (1 + headroom) / capacity - 1e-9))


def search_command(request: PlanRequest, instance_type: str, scenario: str, model: str) -> str:
    """The `siliconbench-agent search` that would measure the candidate for this plan."""
    parts = ["siliconbench-agent search --target http://VLLM:8000 --collector COLLECTOR:50051",
             f"--instance-type {instance_type}"]
    parts += [f"--scenario {scenario}"] * bool(scenario) + [f"--model {model}"] * bool(model)
    slo = ",".join(f"{k}<={v:g}" for k, v in request.limits.items())
    parts += ["--control rate", f"--slo '{slo}'", *request.workload.search_flags()]
    return " ".join(parts)


def _choice(request: PlanRequest, key: Candidate, answering: Answering, capacity: Capacity) -> Choice:
    instance_type, scenario, model = key
    unit, search = request.load.unit, answering.search
    nodes = nodes_for(request.load.value, request.headroom, capacity.in_unit(unit))
    assert nodes is not None, "a capacity is positive"
    price = request.prices.price(instance_type)
    notes = [] if price is not None else [request.prices.missing_note(instance_type)]
    if not any(n.verified for n in search.nodes if n.agent_id == capacity.agent_id):
        notes.append("boundary NOT verified (the search's verification probe did not pass)")
    fleet = nodes * price.usd_per_hour if price is not None else None
    node = next(n for n in search.nodes if n.agent_id == capacity.agent_id)
    headroom = {k: (1 - node.bounds[k] / limit if node.bounds.get(k) is not None else None)  # type: ignore[operator]
                for k, limit in request.limits.items()}
    return Choice(instance_type, scenario, model, capacity, nodes,
                  nodes_for(request.load.value, request.headroom, capacity.in_unit(unit, low=True)), price, fleet,
                  usd_per_million(fleet, request.load_tps) if fleet is not None else None,
                  usd_per_million(fleet, nodes * capacity.tps) if fleet is not None else None,
                  headroom, search, answering.borrowed, tuple(notes))


def _order(c: Choice) -> tuple[bool, float, int, str, str]:
    return c.usd_per_hour is None, c.usd_per_hour or 0.0, c.nodes, c.instance_type, c.scenario


def build_plan(store: Store, request: PlanRequest) -> PlanAnswer:
    """The ranked answer from the stored searches (module docstring)."""
    if not 0 <= request.headroom < 10:
        raise InvalidOption(f"--headroom {request.headroom:g}: give a share >= 0, e.g. 0.2 for 20 %")
    limits = request.limits
    groups: dict[Candidate, list[Searched]] = {}
    unlabelled = 0
    for s in stored_searches(store):
        if not s.instance_type:
            unlabelled += 1
        elif not request.candidates or s.instance_type in request.candidates:
            groups.setdefault((s.instance_type, s.scenario, s.model), []).append(s)
    chosen: dict[Candidate, Answering] = {}
    missing: list[Missing] = []
    for key, searches in groups.items():
        answering, reasons = choose(searches, request.workload, limits, request.allow_other_workload)
        if answering is None:
            missing.append(Missing(*key, tuple(reasons), search_command(request, *key)))
        else:
            chosen[key] = answering
    searched_types = {key[0] for key in groups}
    missing += [Missing(t, "", "", ("no search stored for this instance type",), search_command(request, t, "", ""))
                for t in request.candidates if t not in searched_types]
    measured = with_boundaries(store, [a.search for a in chosen.values()])  # in the same order
    choices, unmet = [], []
    for (key, answering), search in zip(chosen.items(), measured):
        capacity = search_capacity(search)
        if capacity is None:
            why = ("no load within the SLOs, not even the search's first probe" if not any(n.found for n in search.nodes)
                   else "no boundary probe with requests to measure the capacity by")
            unmet.append(Unmet(*key, search.search_id, search.simulated, why))
        else:
            choices.append(_choice(request, key, Answering(search, answering.borrowed), capacity))
    choices.sort(key=_order)
    return PlanAnswer(request, tuple(choices), tuple(sorted(missing, key=lambda m: (m.instance_type, m.scenario, m.model))),
                      tuple(unmet), tuple(_warnings(choices, unmet, unlabelled)))


def _warnings(choices: list[Choice], unmet: list[Unmet], unlabelled: int) -> list[str]:
    out = [f"{c.instance_type}{_scenario(c.scenario)}: capacity BORROWED from another workload "
           f"(search {c.evidence.search_id}: {'; '.join(c.borrowed)}) — --allow-other-workload"
           for c in choices if c.borrowed]
    simulated = sorted({c.evidence.search_id for c in choices if c.simulated} | {u.search_id for u in unmet if u.simulated})
    if simulated:
        out.append(f"SIMULATED evidence (searches of a simulator, not of the hardware): {', '.join(simulated)}")
    if unlabelled:
        out.append(f"{unlabelled} stored search(es) ran on nodes with no instance type, left out "
                   "(start the agent with --instance-type)")
    return out
