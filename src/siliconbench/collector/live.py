"""A run as it stands now, per node: what the live page (collector/web.py) shows and refreshes.

The run's state is the one every report heads with (collector/lifecycle.py: a fleet run's from its
members' progress, a single run's from its start and end events). Per node: the fleet progress the agent
last reported (`run status`'s figures: step of steps, state, detail) and, from the rows stored so far,
requests and errors, the output throughput of its latest step, the client's saturation flag of its latest
finished step, and its devices' utilisation and power over the last LIVE_WINDOW_S of samples.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from siliconbench.collector.lifecycle import lifecycle
from siliconbench.collector.runs import NodeState
from siliconbench.collector.store import Store

LIVE_WINDOW_S = 10  # device samples averaged over this many seconds before a node's latest one
DEVICE_UTIL = ("gpu_util_pct", "neuroncore_util_pct")  # accelerator utilisation metrics (agent/samplers)

REQUESTS_SQL = """
SELECT agent_id, sum(n) AS requests, sum(failed) AS errors, max(step) AS last_step,
    argMax(tokens, step) AS step_tokens, argMax(seconds, step) AS step_seconds
FROM (
    SELECT agent_id, step, count() AS n, countIf(error_class != '') AS failed, sum(output_tokens) AS tokens,
        (max(toUnixTimestamp64Nano(start_time) + greatest(e2e_ns, 0)) - min(toUnixTimestamp64Nano(start_time))) / 1e9
            AS seconds
    FROM {db}.requests WHERE run_id = {r:String} GROUP BY agent_id, step
) GROUP BY agent_id
"""
STEPS_SQL = """
SELECT agent_id, uniqExact(step) AS done, argMax(client_saturated, step) AS saturated,
    argMax(agent_cpu_pct, step) AS cpu
FROM {db}.steps WHERE run_id = {r:String} GROUP BY agent_id
"""
# Per node: per device and metric the mean over the window, then utilisation averaged and power summed
# over its devices.
DEVICES_SQL = """
WITH latest AS (SELECT agent_id, max(time) AS last FROM {db}.device_samples WHERE run_id = {r:String} GROUP BY agent_id)
SELECT agent_id, avgIf(mean, metric IN {util:Array(String)}) AS util, sumIf(mean, metric = 'power_w') AS power,
    countIf(metric = 'power_w') AS powered, avgIf(mean, metric = 'cpu_util_pct') AS host_cpu
FROM (
    SELECT s.agent_id AS agent_id, s.device AS device, s.metric AS metric, avg(s.value) AS mean
    FROM {db}.device_samples AS s INNER JOIN latest ON latest.agent_id = s.agent_id
    WHERE s.run_id = {r:String} AND s.time >= latest.last - toIntervalSecond({window:UInt32})
    GROUP BY agent_id, device, metric
) GROUP BY agent_id
"""
NAMES_SQL = "SELECT agent_id, any(node_name), any(instance_type) FROM {db}.nodes FINAL GROUP BY agent_id"
RUN_SQL = """
SELECT anyIf(scenario, phase = 'start'), anyIf(model, phase = 'start'), anyIf(target_url, phase = 'start'), max(simulated)
FROM {db}.runs WHERE run_id = {r:String}
"""
KIND_SQL = """
SELECT (SELECT count() FROM {db}.run_nodes WHERE run_id = {r:String}) > 0,
       (SELECT count() FROM {db}.search_probes WHERE run_id = {r:String}) > 0
"""


@dataclass(slots=True)
class LiveNode:
    """One node of a run now (None: nothing of that kind stored yet)."""

    agent_id: str
    node_name: str = ""
    instance_type: str = ""
    scenario: str = ""
    state: str = ""                    # the fleet member's state; "" for a single run's node
    steps_done: int = 0                # steps finished, as it reported them or as stored
    steps_total: int | None = None     # known for fleet members
    step: int | None = None            # the step its latest stored requests belong to (0-based)
    requests: int = 0                  # request records stored
    errors: int = 0                    # of those, failed
    output_tokens_per_s: float | None = None  # over its latest step's stored requests
    saturated: bool | None = None      # its latest finished step: the client may have limited the load
    agent_cpu_pct: float | None = None
    device_util_pct: float | None = None      # accelerator utilisation, mean over its devices
    power_w: float | None = None              # accelerator power, summed over its devices
    host_cpu_pct: float | None = None
    detail: str = ""


@dataclass(slots=True)
class LiveRun:
    run_id: str
    state: str
    detail: str
    fleet: bool
    search: bool
    scenario: str = ""
    model: str = ""
    target: str = ""
    simulated: bool = False
    updated_unix_s: float = 0.0
    nodes: list[LiveNode] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def live_run(store: Store, run_id: str) -> LiveRun:
    """`run_id` as it stands now; RunNotFound (one line, with the fix) when the store has no such run."""
    life = lifecycle(store, run_id)
    fleet, search = store.query(KIND_SQL, {"r": run_id}).result_rows[0]
    scenario, model, target, simulated = store.query(RUN_SQL, {"r": run_id}).result_rows[0]
    run = LiveRun(run_id=run_id, state=life.state, detail=life.detail, fleet=bool(fleet), search=bool(search),
                  scenario=scenario, model=model, target=target, simulated=bool(simulated),
                  updated_unix_s=time.time())
    nodes: dict[str, LiveNode] = {n.agent_id: _from_progress(n) for n in life.nodes}
    for agent_id, requests, errors, last_step, tokens, seconds in _rows(store, REQUESTS_SQL, run_id):
        node = nodes.setdefault(agent_id, LiveNode(agent_id, scenario=scenario))
        node.requests, node.errors, node.step = requests, errors, last_step
        node.output_tokens_per_s = tokens / seconds if seconds > 0 else None
    for agent_id, done, saturated, cpu in _rows(store, STEPS_SQL, run_id):
        if agent_id in nodes:
            node = nodes[agent_id]
            node.steps_done, node.saturated, node.agent_cpu_pct = max(node.steps_done, done), bool(saturated), cpu
    params = {"util": list(DEVICE_UTIL), "window": LIVE_WINDOW_S}
    for agent_id, util, power, powered, host_cpu in _rows(store, DEVICES_SQL, run_id, params):
        if agent_id in nodes:
            node = nodes[agent_id]
            node.device_util_pct = _finite(util)
            node.power_w = power if powered else None
            node.host_cpu_pct = _finite(host_cpu)
    for agent_id, name, itype in store.query(NAMES_SQL).result_rows:
        if agent_id in nodes:
            nodes[agent_id].node_name = nodes[agent_id].node_name or name
            nodes[agent_id].instance_type = nodes[agent_id].instance_type or itype
    run.nodes = sorted(nodes.values(), key=lambda n: (n.scenario, n.node_name, n.agent_id))
    return run


def _from_progress(node: NodeState) -> LiveNode:
    return LiveNode(node.agent_id, node.node_name, node.instance_type, node.scenario, state=node.state,
                    steps_done=node.step, steps_total=node.steps_total or None, detail=node.detail)


def _rows(store: Store, sql: str, run_id: str, extra: dict[str, Any] | None = None) -> list[tuple]:
    return store.query(sql, {"r": run_id, **(extra or {})}).result_rows


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and value == value else None  # avgIf over no row is nan
