"""The stored searches a plan may rest on, read from the searches' own tables.

`stored_searches` reads every search's answer with what the search ran on: the node's instance type (the
fleet's membership row, else the node's Hello), the run's scenario, model, SIMULATED flag, plan (its
workload) and start. `with_boundaries` then reads, for the searches chosen, each node's boundary probe:
the last probe judged `pass` at the boundary (the verification probe where there is one), its requests and
steady seconds, and, for a concurrency search, its successful requests' mean E2E and output tokens (read
by primary key: run, node, step).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

from siliconbench.collector.store import Store
from siliconbench.collector.workload import plan_of
from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan
from siliconbench.core.slo import parse_slos

SEARCHES_SQL = """
SELECT s.search_id AS search_id, s.run_id AS run_id, s.agent_id AS agent_id, s.control AS control, s.slo AS slo,
       s.found AS found, s.boundary AS boundary, s.verified AS verified, s.binding AS binding,
       s.slo_keys AS slo_keys, s.slo_bounds AS slo_bounds, s.output_tps AS output_tps, s.rps AS rps,
       if(rn.instance_type != '', rn.instance_type, n.instance_type) AS instance_type,
       r.scenario AS scenario, r.model AS model, r.simulated AS simulated, r.config_json AS config_json,
       r.started AS started
FROM (SELECT * FROM {db}.searches LIMIT 1 BY run_id, agent_id) AS s
LEFT JOIN (SELECT run_id, agent_id, any(scenario) AS scenario, any(model) AS model, max(simulated) AS simulated,
                  any(config_json) AS config_json, min(time) AS started
           FROM {db}.runs WHERE phase = 'start' AND run_id IN (SELECT run_id FROM {db}.searches)
           GROUP BY run_id, agent_id) AS r ON r.run_id = s.run_id AND r.agent_id = s.agent_id
LEFT JOIN (SELECT agent_id, argMax(instance_type, seen_at) AS instance_type FROM {db}.nodes GROUP BY agent_id) AS n
       ON n.agent_id = s.agent_id
LEFT JOIN (SELECT run_id, agent_id, argMax(instance_type, created) AS instance_type FROM {db}.run_nodes
           WHERE run_id IN (SELECT run_id FROM {db}.searches) GROUP BY run_id, agent_id) AS rn
       ON rn.run_id = s.run_id AND rn.agent_id = s.agent_id
ORDER BY started DESC, search_id, agent_id
"""

PROBES_SQL = """
SELECT p.search_id AS search_id, p.agent_id AS agent_id, p.probe AS probe, p.step AS step, p.value AS value,
       p.phase AS phase, p.verdict AS verdict, p.requests AS requests,
       dateDiff('microsecond', st.start_time, st.end_time) / 1e6 AS seconds
FROM {db}.search_probes AS p
LEFT JOIN {db}.steps AS st ON st.run_id = p.run_id AND st.agent_id = p.agent_id AND st.step = p.step
WHERE p.search_id IN {ids:Array(String)}
ORDER BY p.search_id, p.agent_id, p.step
"""

E2E_SQL = """
SELECT run_id, agent_id, count() AS requests, avg(e2e_ns) / 1e9 AS e2e_s, avg(output_tokens) AS output_tokens
FROM {db}.requests
WHERE run_id IN {runs:Array(String)} AND (run_id, agent_id, step) IN {keys:Array(Tuple(String, String, UInt32))}
  AND error_class = ''
GROUP BY run_id, agent_id
"""


@dataclass(frozen=True, slots=True)
class BoundaryProbe:
    """The probe that passed at the boundary: its requests (pooled over its steps) and steady seconds; for a
    concurrency search, its successful requests' mean E2E and output tokens (None: not read, or none)."""

    probe: int
    phase: str
    requests: int
    seconds: float
    steps: tuple[int, ...]
    e2e_s: float | None = None
    output_tokens: float | None = None


@dataclass(frozen=True, slots=True)
class NodeAnswer:
    """One node's answer to a search."""

    agent_id: str
    found: bool
    boundary: float
    verified: bool
    binding: str
    bounds: dict[str, float | None]  # per SLO key of the search: the 95 % upper bound at the boundary
    rps: float
    output_tps: float
    probe: BoundaryProbe | None = None


@dataclass(frozen=True, slots=True)
class Searched:
    """One search of one instance type and scenario (a fleet's search on several types is one per type)."""

    search_id: str
    run_id: str
    instance_type: str
    scenario: str
    model: str
    simulated: bool
    started: dt.datetime
    control: str
    slo: str
    plan: Plan | None
    nodes: tuple[NodeAnswer, ...]

    @property
    def limits(self) -> dict[str, float]:
        """The search's SLOs, key -> limit (empty when its SLO text cannot be read)."""
        try:
            return {o.key: o.limit for o in parse_slos(self.slo)}
        except ConfigError:
            return {}


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def stored_searches(store: Store) -> list[Searched]:
    """Every stored search, newest first, without its probes."""
    grouped: dict[tuple[str, str, str, str], tuple[dict, list[NodeAnswer]]] = {}
    for r in store.query(SEARCHES_SQL).named_results():
        key = (r["search_id"], r["instance_type"], r["scenario"], r["model"])
        node = NodeAnswer(r["agent_id"], bool(r["found"]), r["boundary"], bool(r["verified"]), r["binding"],
                          dict(zip(r["slo_keys"], map(_number, r["slo_bounds"]))), r["rps"], r["output_tps"])
        grouped.setdefault(key, (r, []))[1].append(node)
    return [Searched(r["search_id"], r["run_id"], r["instance_type"], r["scenario"], r["model"], bool(r["simulated"]),
                     r["started"], r["control"], r["slo"], plan_of(r["config_json"]), tuple(nodes))
            for r, nodes in grouped.values()]


def _boundary_probe(rows: list[dict], boundary: float) -> BoundaryProbe | None:
    passed = [r for r in rows if r["value"] == boundary and r["verdict"] == "pass"]
    if not passed:
        return None
    best = max(passed, key=lambda r: (r["phase"] == "verify", r["probe"]))
    steps = [r for r in rows if r["probe"] == best["probe"]]
    return BoundaryProbe(best["probe"], best["phase"], best["requests"], sum(r["seconds"] or 0.0 for r in steps),
                         tuple(r["step"] for r in steps))


def with_boundaries(store: Store, searches: list[Searched]) -> list[Searched]:
    """`searches` with each node's boundary probe (and, for concurrency searches, its requests' E2E)."""
    if not searches:
        return []
    probes: dict[tuple[str, str], list[dict]] = {}
    for r in store.query(PROBES_SQL, {"ids": sorted({s.search_id for s in searches})}).named_results():
        probes.setdefault((r["search_id"], r["agent_id"]), []).append(r)
    found = [replace(s, nodes=tuple(replace(n, probe=_boundary_probe(probes.get((s.search_id, n.agent_id), []),
                                                                      n.boundary)) for n in s.nodes))
             for s in searches]
    keys = [(s.run_id, n.agent_id, step) for s in found if s.control == "concurrency"
            for n in s.nodes if n.probe is not None for step in n.probe.steps]
    if not keys:
        return found
    measured = {(run_id, agent_id): (e2e_s, tokens) for run_id, agent_id, _, e2e_s, tokens in store.query(
        E2E_SQL, {"runs": sorted({k[0] for k in keys}), "keys": keys}).result_rows}
    return [replace(s, nodes=tuple(_with_e2e(n, measured.get((s.run_id, n.agent_id))) for n in s.nodes))
            if s.control == "concurrency" else s for s in found]


def _with_e2e(node: NodeAnswer, e2e_and_tokens: tuple[float, float] | None) -> NodeAnswer:
    if node.probe is None or e2e_and_tokens is None:
        return node
    e2e_s, tokens = e2e_and_tokens
    return replace(node, probe=replace(node.probe, e2e_s=e2e_s, output_tokens=tokens))
