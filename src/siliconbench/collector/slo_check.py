"""`check-slo`: did each node of a run hold the SLOs? Per node, the measured value of each objective of
`--slo` (core/slo.py's vocabulary) over every request the node stored for the run, against its limit.

A latency percentile is exact (quantileExact over the raw rows, in ClickHouse, as the fleet report
computes them), from the per-request figures of collector/formulas.py over the successful requests: TTFT,
TTFA (a request that never answered counts as infinitely late), ITL per chunk gap, TPOT, E2E; the error
rate is failed requests over all requests. A node with no sample for an objective (it stored no
successful request) did not hold it: nothing shows that it did. The verdict is on the measured value, not
on a confidence bound (as a search's probes are): it says whether this run held, not whether the next will.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from siliconbench.collector.formulas import REQUEST_FIGURES
from siliconbench.collector.lifecycle import lifecycle
from siliconbench.collector.store import Store
from siliconbench.core.slo import ERROR_RATE, Objective

OK = "r.error_class = ''"
# each metric of core/slo.py METRICS as the aggregate of its percentile over one node's requests
_AGGREGATES = {
    "ttft": "quantileExactIf({q})(req_ttft_ms, " + OK + ")",
    "ttfa": "quantileExactIf({q})(if(req_has_answer, req_ttfa_ms, inf), " + OK + ")",
    "itl": "quantileExactArrayIf({q})(req_gap_ms, " + OK + ")",
    "tpot": "quantileExactIf({q})(req_tpot_ms, " + OK + " AND req_has_tpot)",
    "e2e": "quantileExactIf({q})(req_e2e_ms, " + OK + ")",
    ERROR_RATE: "countIf(r.error_class != '') / count()",
}

NODES_SQL = """
WITH members AS (
    SELECT agent_id, any(scenario) AS scenario, max(simulated) AS simulated
    FROM {{db}}.runs WHERE run_id = {{run:String}} AND phase = 'start' GROUP BY agent_id
), measured AS (
    WITH {figures}
    SELECT r.agent_id AS agent_id, count() AS requests, countIf(r.error_class != '') AS errors{values}
    FROM {{db}}.requests AS r WHERE r.run_id = {{run:String}} GROUP BY r.agent_id
)
SELECT m.agent_id AS agent_id, ifNull(n.node_name, '') AS node_name, ifNull(n.instance_type, '') AS instance_type,
       m.scenario AS scenario, m.simulated AS simulated, ifNull(v.requests, 0) AS requests,
       ifNull(v.errors, 0) AS errors{picked}
FROM members AS m
LEFT JOIN measured AS v ON v.agent_id = m.agent_id
LEFT JOIN (SELECT agent_id, any(node_name) AS node_name, any(instance_type) AS instance_type
           FROM {{db}}.nodes FINAL GROUP BY agent_id) AS n ON n.agent_id = m.agent_id
ORDER BY m.agent_id
SETTINGS join_use_nulls = 1
"""


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    """One node: its measured value per SLO key (None: no sample) and the keys it broke."""

    agent_id: str
    node_name: str
    instance_type: str
    scenario: str
    requests: int
    errors: int
    values: dict[str, float | None]
    broken: tuple[str, ...]

    @property
    def held(self) -> bool:
        return not self.broken

    @property
    def label(self) -> str:
        return self.node_name or self.agent_id


@dataclass(frozen=True, slots=True)
class SloCheck:
    """A run judged against `objectives`: every member node's verdict, the run's state and whether any
    node was simulated."""

    run_id: str
    objectives: tuple[Objective, ...]
    nodes: tuple[NodeVerdict, ...]
    state: str
    finished: bool
    simulated: bool

    @property
    def held(self) -> bool:
        return bool(self.nodes) and all(n.held for n in self.nodes)


def _sql(objectives: Sequence[Objective]) -> str:
    values = "".join(f",\n           {_AGGREGATES[o.metric].format(q=o.q)} AS v{i}" for i, o in enumerate(objectives))
    picked = "".join(f", v.v{i} AS v{i}" for i in range(len(objectives)))
    return NODES_SQL.format(figures=REQUEST_FIGURES, values=values, picked=picked)


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def broken_keys(objectives: Sequence[Objective], values: dict[str, float | None]) -> tuple[str, ...]:
    """The keys whose value is missing or over its limit."""
    return tuple(o.key for o in objectives if (v := values[o.key]) is None or v > o.limit)


def check_slo(store: Store, run_id: str, objectives: Sequence[Objective]) -> SloCheck:
    """Each member node of `run_id` judged against `objectives`; RunNotFound for an unknown run."""
    state = lifecycle(store, run_id)  # RunNotFound names the run
    nodes = []
    simulated = False
    for row in store.query(_sql(objectives), {"run": run_id}).named_results():
        values = {o.key: _number(row[f"v{i}"]) for i, o in enumerate(objectives)}
        simulated = simulated or bool(row["simulated"])
        nodes.append(NodeVerdict(row["agent_id"], row["node_name"], row["instance_type"], row["scenario"],
                                 int(row["requests"]), int(row["errors"]), values, broken_keys(objectives, values)))
    return SloCheck(run_id, tuple(objectives), tuple(nodes), state.describe(), state.finished, simulated)
