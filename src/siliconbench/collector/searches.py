"""Reading a stored search: its curve (each probe's step), its evidence (each probe's bounds and
verdict) and its answer, in one SQL query (`EVIDENCE`, README "Searching for the largest load").

Every probe is an ordinary step (`steps`) tagged by `search_probes` (same run, agent and step); the
answer is the search run's row of `searches`. A node searching in a fleet run is one agent of the run,
so a fleet's searches are told apart by agent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from siliconbench.collector.errors import RunNotFound
from siliconbench.collector.store import Store
from siliconbench.core.search import undecided_between

EVIDENCE = """
SELECT p.agent_id AS agent_id, p.step AS step, p.probe AS probe, p.value AS value, p.phase AS phase,
       p.verdict AS verdict, p.reason AS reason, p.requests AS requests, p.slo_keys AS slo_keys,
       p.slo_limits AS slo_limits, p.slo_points AS slo_points, p.slo_bounds AS slo_bounds,
       p.readings_from AS readings_from,
       st.mode AS mode, st.concurrency AS concurrency, st.rate_rps AS rate_rps,
       st.client_saturated AS client_saturated,
       s.control AS control, s.slo AS slo, s.method AS method, s.tolerance AS tolerance, s.found AS found,
       s.boundary AS boundary, s.verified AS verified, s.binding AS binding, s.slo_keys AS answer_keys,
       s.slo_bounds AS answer_bounds, s.headroom AS headroom, s.output_tps AS output_tps, s.rps AS rps
FROM {db}.search_probes AS p
INNER JOIN {db}.steps AS st ON st.run_id = p.run_id AND st.agent_id = p.agent_id AND st.step = p.step
LEFT JOIN {db}.searches AS s ON s.run_id = p.run_id AND s.agent_id = p.agent_id
WHERE p.search_id = {search:String}
ORDER BY p.agent_id, p.step
"""


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """One step of a probe: its value, verdict and, per SLO, the limit, point estimate and bound (None:
    no sample, or too few for a bound)."""

    step: int
    probe: int
    value: float
    phase: str
    verdict: str
    reason: str
    requests: int
    slo_keys: tuple[str, ...]
    limits: tuple[float, ...]
    points: tuple[float | None, ...]
    bounds: tuple[float | None, ...]
    client_saturated: bool
    readings_from: str = ""  # "collector": read from the store (collector/probe_readings.py); else why not

    @property
    def final(self) -> bool:
        """The probe's own verdict (not a step that more steps of the probe followed)."""
        return self.verdict not in ("extend", "inconclusive")


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    control: str
    slo: str
    method: str
    tolerance: float
    found: bool
    boundary: float
    verified: bool
    binding: str
    bounds: dict[str, float | None]
    headroom: dict[str, float | None]
    output_tps: float
    rps: float


@dataclass(frozen=True, slots=True)
class NodeSearch:
    """One node's search: its probes' steps and its answer (None: the search did not finish)."""

    agent_id: str
    probes: tuple[ProbeRow, ...]
    answer: SearchAnswer | None

    def undecided(self) -> tuple[float | None, list[float]]:
        """Where the probes left the answer undecided (core/search.py undecided_between): the value it is
        undecided up to and the values the data could not decide; (None, []) when it is decided."""
        a = self.answer
        if a is None:
            return None, []
        return undecided_between(a.control, a.tolerance, a.boundary if a.found else None,
                                 ((r.value, r.verdict) for r in self.probes if r.final))


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def load_search(store: Store, search_id: str) -> list[NodeSearch]:
    """The search's probes and answer per node; RunNotFound when no probe of it is stored."""
    rows = list(store.query(EVIDENCE, {"search": search_id}).named_results())
    if not rows:
        raise RunNotFound(f"no search {search_id!r} in the store (its id is the search run's id: see `runs list`)")
    nodes: dict[str, tuple[list[ProbeRow], SearchAnswer | None]] = {}
    for r in rows:
        probes, answer = nodes.setdefault(r["agent_id"], ([], None))
        probes.append(ProbeRow(r["step"], r["probe"], r["value"], r["phase"], r["verdict"], r["reason"],
                               r["requests"], tuple(r["slo_keys"]), tuple(r["slo_limits"]),
                               tuple(map(_number, r["slo_points"])), tuple(map(_number, r["slo_bounds"])),
                               bool(r["client_saturated"]), r["readings_from"]))
        if answer is None and r["control"]:
            keys = list(r["answer_keys"])
            answer = SearchAnswer(r["control"], r["slo"], r["method"], r["tolerance"], bool(r["found"]),
                                  r["boundary"], bool(r["verified"]), r["binding"],
                                  dict(zip(keys, map(_number, r["answer_bounds"]))),
                                  dict(zip(keys, map(_number, r["headroom"]))), r["output_tps"], r["rps"])
            nodes[r["agent_id"]] = (probes, answer)
    return [NodeSearch(agent, tuple(probes), answer) for agent, (probes, answer) in nodes.items()]
