"""The fleet report: one run on many nodes, compared by scenario.

Percentiles pool every request of every node of a scenario and are exact (quantilesExact over
the raw rows, in ClickHouse). A scenario's throughput at a step is the sum of its nodes'
output tokens/s (the nodes run at the same time), then the median over repetitions. The run's
lifecycle state heads the report: an unfinished run says so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from siliconbench.collector.errors import RunNotFound
from siliconbench.collector.fleet import STATE_NAMES, node_statuses, run_state
from siliconbench.collector.store import Store
from siliconbench.core.wire import pb

SCENARIO_SQL = """
WITH members AS (
    SELECT run_id, agent_id, any(scenario) AS scenario, max(simulated) AS simulated
    FROM {db}.runs WHERE run_id = {run:String} AND phase = 'start' GROUP BY run_id, agent_id
), per_step AS (
    SELECT agent_id, step, any(concurrency) AS concurrency, any(repetition) AS repetition,
           sumIf(output_tokens, error_class = '') AS tokens,
           (max(toUnixTimestamp64Nano(start_time) + e2e_ns) - min(toUnixTimestamp64Nano(start_time))) / 1e9 AS wall_s
    FROM {db}.requests WHERE run_id = {run:String} GROUP BY agent_id, step
), throughput AS (
    SELECT m.scenario AS scenario, p.concurrency AS concurrency, median(tps) AS output_tps
    FROM (
        SELECT agent_id, concurrency, repetition, if(wall_s > 0, tokens / wall_s, 0) AS tps FROM per_step
    ) AS p INNER JOIN members AS m USING (agent_id)
    GROUP BY scenario, concurrency, p.repetition
)
SELECT l.scenario, l.concurrency, l.nodes, l.instance_types, l.requests, l.errors, l.ttft_ms, l.itl_ms,
       l.tpot_ms, l.e2e_ms, t.output_tps, l.simulated
FROM (
    SELECT m.scenario AS scenario, r.concurrency AS concurrency, uniqExact(r.agent_id) AS nodes,
           arrayStringConcat(arraySort(groupUniqArray(n.instance_type)), ', ') AS instance_types,
           count() AS requests, countIf(r.error_class != '') AS errors,
           quantilesExactIf(0.5, 0.99)(r.ttft_ns / 1e6, r.error_class = '') AS ttft_ms,
           quantilesExactArrayIf(0.5, 0.99)(
               arrayMap(g -> g / 1e6, arrayPopFront(arrayDifference(r.chunk_offset_ns))), r.error_class = '') AS itl_ms,
           quantilesExactIf(0.5, 0.99)((r.e2e_ns - r.ttft_ns) / 1e6 / (r.output_tokens - 1),
                                       r.error_class = '' AND r.output_tokens > 1) AS tpot_ms,
           quantilesExactIf(0.5, 0.99)(r.e2e_ns / 1e6, r.error_class = '') AS e2e_ms,
           max(m.simulated) AS simulated
    FROM {db}.requests AS r
    INNER JOIN members AS m ON m.agent_id = r.agent_id
    LEFT JOIN (SELECT agent_id, instance_type FROM {db}.nodes FINAL) AS n ON n.agent_id = r.agent_id
    WHERE r.run_id = {run:String}
    GROUP BY scenario, concurrency
) AS l
LEFT JOIN (SELECT scenario, concurrency, median(output_tps) AS output_tps FROM throughput GROUP BY scenario, concurrency)
    AS t ON t.scenario = l.scenario AND t.concurrency = l.concurrency
ORDER BY l.scenario, l.concurrency
"""

STANDALONE_STATE_SQL = """
SELECT countIf(phase = 'start') AS started, countIf(phase = 'end') AS ended
FROM {db}.runs WHERE run_id = {run:String}
"""


@dataclass(frozen=True, slots=True)
class Lifecycle:
    state: str          # planned, running, finished, cancelled, failed
    nodes: list[pb.NodeStatus]
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.state == "finished"


def lifecycle(store: Store, run_id: str) -> Lifecycle:
    """A run's state: from its fleet members' progress, or, for a run started on one node with
    `siliconbench-agent run`, from its start and end events."""
    nodes = node_statuses(store, run_id, lambda _agent: False)
    if nodes:
        return Lifecycle(STATE_NAMES.get(run_state(nodes), "unknown"), nodes)
    started, ended = store.query(STANDALONE_STATE_SQL, {"run": run_id}).result_rows[0]
    if not started:
        raise RunNotFound(f"no run {run_id!r} in {store.location.shown}; `siliconbench-collector runs list` lists them")
    if ended >= started:
        return Lifecycle("finished", [])
    return Lifecycle("running", [], f"{started - ended} of {started} nodes have not sent the run's end")


def scenario_rows(store: Store, run_id: str) -> list[dict]:
    result = store.query(SCENARIO_SQL, {"run": run_id})
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def _q(values: list[float]) -> str:
    return " / ".join("–" if v != v else f"{v:.1f}" for v in values)


def markdown(run_id: str, life: Lifecycle, rows: list[dict]) -> str:
    lines = [f"# siliconbench fleet run {run_id}", ""]
    if not life.finished:
        lines += [f"> ⚠ **UNFINISHED run (state: {life.state})** — figures cover only what was stored so far."
                  + (f" {life.detail}" if life.detail else ""), ""]
    if any(r["simulated"] for r in rows):
        lines += ["> ⚠ **SIMULATED target** on some or all nodes: the figures test the pipeline, not the hardware.", ""]
    if life.nodes:
        lines += ["| node | scenario | instance type | state | steps | requests | errors | detail |",
                  "|---|---|---|---|---:|---:|---:|---|"]
        for n in life.nodes:
            p = n.progress
            lines.append(f"| {n.node_name or n.agent_id} | {n.scenario or '–'} | {n.instance_type or '–'} | "
                         f"{STATE_NAMES.get(p.state, '?')} | {p.step}/{p.steps_total} | {p.requests_done} | "
                         f"{p.errors} | {p.detail or ''} |")
        lines.append("")
    lines += ["| scenario | instance types | conc | nodes | requests | errors | TTFT ms p50/p99 | ITL ms p50/p99 "
              "| TPOT ms p50/p99 | E2E ms p50/p99 | output tok/s |",
              "|---|---|---:|---:|---:|---:|---|---|---|---|---:|"]
    for r in rows:
        lines.append(f"| {r['scenario'] or '–'} | {r['instance_types'] or '–'} | {r['concurrency']} | {r['nodes']} | "
                     f"{r['requests']} | {r['errors']} | {_q(r['ttft_ms'])} | {_q(r['itl_ms'])} | {_q(r['tpot_ms'])} | "
                     f"{_q(r['e2e_ms'])} | {r['output_tps'] or 0:,.1f} |")
    lines += ["", "Percentiles are exact over all requests of all nodes of a scenario (successful requests only). "
              "Output tok/s = per step, Σ over the scenario's nodes of (output tokens ÷ step wall time), then the "
              "median over repetitions. Concurrency is per node.",
              f"Generated {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC."]
    return "\n".join(lines) + "\n"


def as_json(run_id: str, life: Lifecycle, rows: list[dict]) -> str:
    nodes = [{"agent_id": n.agent_id, "node": n.node_name, "scenario": n.scenario, "instance_type": n.instance_type,
              "state": STATE_NAMES.get(n.progress.state, "?"), "steps_done": n.progress.step,
              "steps_total": n.progress.steps_total, "detail": n.progress.detail} for n in life.nodes]
    return json.dumps({"run_id": run_id, "state": life.state, "detail": life.detail, "nodes": nodes,
                       "scenarios": rows}, indent=2, default=str) + "\n"
