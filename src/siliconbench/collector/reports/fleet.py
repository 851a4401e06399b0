"""The fleet report as data: one run on many nodes, compared by scenario, rendered by the same
renderers as every report (collector/reports/: markdown, csv, json, html).

Rows are (scenario, sweep point). Percentiles pool every request of every node of a scenario and are exact (quantilesExact over the
raw rows, in ClickHouse), from the per-request figures of collector/formulas.py. A scenario's
throughput at a step is the sum of its nodes' output tokens/s (step_rollups: the nodes run at the
same time), then the median over repetitions; its steady throughput the same over each node's steady
part (views.STEP_STEADY, closed loop). The run's lifecycle state heads the report: an
unfinished run says so. Beside the scenario rows the fleet report carries the same run as a single-run
report (`detail`): what was measured, the charts per node (named by scenario and instance type) and cost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from siliconbench.collector.figures import Percentiles, quantile_name
from siliconbench.collector.formulas import REQUEST_FIGURES
from siliconbench.collector.lifecycle import Lifecycle, lifecycle
from siliconbench.collector.points import Point
from siliconbench.collector.reports.definitions import PERCENTILE_METHOD
from siliconbench.collector.reports.model import build_report
from siliconbench.collector.reports.report import Options, Report
from siliconbench.collector.reports.table import INT, MS, TPS, Column, Table
from siliconbench.collector.rollups import Selection
from siliconbench.collector.step_sql import NO_SLO_ARGS
from siliconbench.collector.store import Store

QUANTILES = (0.5, 0.99)  # the scenario table's percentiles, pooled over its nodes
_Q = ", ".join(str(q) for q in QUANTILES)

# A sweep point is (mode, concurrency, rate) as each node's steps table states it (collector/points.py);
# a step without its steps row reads as points.py says (closed at its requests' concurrency, or 'open').
SCENARIO_SQL = f"""
WITH members AS (
    SELECT run_id, agent_id, any(scenario) AS scenario, max(simulated) AS simulated
    FROM {{db}}.runs WHERE run_id = {{run:String}} AND phase = 'start' GROUP BY run_id, agent_id
), step_points AS (
    SELECT agent_id, step, any(mode) AS step_mode, any(rate_rps) AS step_rate, max(client_saturated) AS saturated
    FROM {{db}}.steps WHERE run_id = {{run:String}} GROUP BY agent_id, step
), throughput AS (
    SELECT m.scenario AS scenario, ifNull(sp.step_mode, if(p.concurrency = 0, 'open', 'closed')) AS mode,
           p.concurrency AS concurrency,
           ifNull(sp.step_rate, 0) AS rate_rps, sum(p.output_tps) AS output_tps,
           if(mode = 'closed' AND countIf(st.steady_output_tps IS NULL) = 0, sum(st.steady_output_tps), NULL)
               AS steady_output_tps
    FROM (SELECT agent_id, step, concurrency, repetition, output_tps FROM {{db}}.step_rollups
          WHERE run_id = {{run:String}}) AS p
    INNER JOIN members AS m USING (agent_id)
    LEFT JOIN step_points AS sp ON sp.agent_id = p.agent_id AND sp.step = p.step
    LEFT JOIN (SELECT agent_id, step, steady_output_tps FROM {{db}}.step_figures({NO_SLO_ARGS})
               WHERE run_id = {{run:String}}) AS st
        ON st.agent_id = p.agent_id AND st.step = p.step
    GROUP BY scenario, mode, concurrency, rate_rps, p.repetition
    SETTINGS join_use_nulls = 1
)
SELECT l.scenario, l.mode, l.concurrency, l.rate_rps, l.nodes, l.instance_types, l.requests, l.errors,
       l.saturated_steps, l.ttft_ms, l.itl_ms, l.tpot_ms, l.e2e_ms, t.output_tps, t.steady_output_tps, l.simulated
FROM (
    WITH {REQUEST_FIGURES}
    SELECT m.scenario AS scenario, ifNull(sp.step_mode, if(r.concurrency = 0, 'open', 'closed')) AS mode,
           r.concurrency AS concurrency,
           ifNull(sp.step_rate, 0) AS rate_rps, uniqExact(r.agent_id) AS nodes,
           arrayStringConcat(arraySort(groupUniqArray(n.instance_type)), ', ') AS instance_types,
           count() AS requests, countIf(r.error_class != '') AS errors,
           uniqExactIf((r.agent_id, r.step), sp.saturated = 1) AS saturated_steps,
           quantilesExactIf({_Q})(req_ttft_ms, r.error_class = '') AS ttft_ms,
           quantilesExactArrayIf({_Q})(req_gap_ms, r.error_class = '') AS itl_ms,
           quantilesExactIf({_Q})(req_tpot_ms, r.error_class = '' AND req_has_tpot) AS tpot_ms,
           quantilesExactIf({_Q})(req_e2e_ms, r.error_class = '') AS e2e_ms,
           max(m.simulated) AS simulated
    FROM {{db}}.requests AS r
    INNER JOIN members AS m ON m.agent_id = r.agent_id
    LEFT JOIN (SELECT agent_id, instance_type FROM {{db}}.nodes FINAL) AS n ON n.agent_id = r.agent_id
    LEFT JOIN step_points AS sp ON sp.agent_id = r.agent_id AND sp.step = r.step
    WHERE r.run_id = {{run:String}}
    GROUP BY scenario, mode, concurrency, rate_rps
    SETTINGS join_use_nulls = 1
) AS l
LEFT JOIN (SELECT scenario, mode, concurrency, rate_rps, median(output_tps) AS output_tps,
                  median(steady_output_tps) AS steady_output_tps
           FROM throughput GROUP BY scenario, mode, concurrency, rate_rps)
    AS t ON t.scenario = l.scenario AND t.mode = l.mode AND t.concurrency = l.concurrency AND t.rate_rps = l.rate_rps
SETTINGS join_use_nulls = 1
"""

# A fleet search (a plan's search: section): each node's answer, beside its scenario and instance type.
SEARCHES_SQL = """
SELECT s.agent_id AS agent_id, any(m.scenario) AS scenario, any(n.instance_type) AS instance_type,
       any(s.control) AS control, any(s.slo) AS slo, any(s.found) AS found, any(s.boundary) AS boundary,
       any(s.verified) AS verified, any(s.binding) AS binding, any(s.output_tps) AS output_tps, any(s.rps) AS rps
FROM {db}.searches AS s
LEFT JOIN (SELECT agent_id, any(scenario) AS scenario FROM {db}.runs
           WHERE run_id = {run:String} AND phase = 'start' GROUP BY agent_id) AS m ON m.agent_id = s.agent_id
LEFT JOIN (SELECT agent_id, instance_type FROM {db}.nodes FINAL) AS n ON n.agent_id = s.agent_id
WHERE s.run_id = {run:String}
GROUP BY s.agent_id
ORDER BY scenario, instance_type, agent_id
"""

_PERCENTILES = (("TTFT", "ttft_ms"), ("ITL", "itl_ms"), ("TPOT", "tpot_ms"), ("E2E", "e2e_ms"))


@dataclass(slots=True)
class FleetReport:
    run_id: str
    generated_at: dt.datetime
    life: Lifecycle
    scenarios: list[dict]     # SCENARIO_SQL rows, raw (JSON and CSV keep the raw values)
    tables: list[Table]       # the nodes' states (fleet runs only), the scenarios compared
    detail: Report            # the same run as a single-run report: what was measured, charts, cost

    @property
    def title(self) -> str:
        return f"siliconbench fleet run {self.run_id}"

    @property
    def simulated(self) -> bool:
        return any(r["simulated"] for r in self.scenarios)

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)

    def banners(self) -> list[str]:
        """The warnings that head the report, most important first."""
        out = []
        if not self.life.finished:
            out.append(f"UNFINISHED run (state: {self.life.state}) — figures cover only what was stored so far."
                       + (f" {self.life.detail}" if self.life.detail else ""))
        if self.simulated:
            out.append("SIMULATED target on some or all nodes: the figures test the pipeline, not the hardware.")
        saturated = sum(int(r["saturated_steps"]) for r in self.scenarios)
        if saturated:
            out.append(f"NOT publishable as is: on {saturated} node step(s) the agent flagged itself as the possible "
                       "limit of the load (client saturated; see the flags column).")
        return out


def build_fleet_report(store: Store, run_id: str) -> FleetReport:
    """The fleet report of `run_id`; RunNotFound when the store has no such run."""
    life = lifecycle(store, run_id)
    result = store.query(SCENARIO_SQL, {"run": run_id})
    rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
    for r in rows:
        r["load"] = Point.of(r).label()
    rows.sort(key=lambda r: (r["scenario"], Point.of(r).order()))
    tables = [_nodes(life)] if life.nodes else []
    tables.append(_scenarios(rows))
    found = store.query(SEARCHES_SQL, {"run": run_id})
    searches = [dict(zip(found.column_names, row)) for row in found.result_rows]
    if searches:
        tables.append(_searches(searches))
    detail = build_report(store, Selection(runs=(run_id,)), Options())
    return FleetReport(run_id, dt.datetime.now(dt.timezone.utc), life, rows, tables, detail)


def _nodes(life: Lifecycle) -> Table:
    t = Table("nodes", "Nodes", [Column("node"), Column("scenario"), Column("instance type"), Column("state"),
                                 Column("steps"), Column("requests", INT), Column("errors", INT), Column("detail")],
              caption="Each member's latest progress; a member silent past the grace is reported as failed.")
    for n in life.nodes:
        t.rows.append([n.node_name or n.agent_id, n.scenario, n.instance_type, n.state, f"{n.step}/{n.steps_total}",
                       n.requests_done, n.errors, n.detail])
    return t


def _scenarios(rows: list[dict]) -> Table:
    t = Table("scenarios", "Scenarios",
              [Column("scenario"), Column("instance types"), Column("load"), Column("nodes", INT),
               Column("requests", INT), Column("errors", INT),
               *(Column(f"{name} {quantile_name(q)}", MS) for name, _ in _PERCENTILES for q in QUANTILES),
               Column("output tok/s", TPS), Column("steady output tok/s", TPS), Column("flags")],
              caption=f"Percentiles over all requests of all nodes of a scenario (successful requests only), {PERCENTILE_METHOD}. "
                      "Output tok/s = per step, Σ over the scenario's nodes of (output tokens ÷ step wall time), then "
                      "the median over repetitions; steady output tok/s the same over each node's steady part (closed "
                      "loop: from the first instant all its streams were in flight to the last, output tokens whose "
                      "chunks arrived in it ÷ its length). load = the sweep point (mode, concurrency, rate), per node; flags: "
                      "steps some node's agent flagged as client-saturated (not publishable as is).")
    for r in rows:
        flags = f"client saturated: {r['saturated_steps']} node step(s)" if r["saturated_steps"] else ""
        t.rows.append([r["scenario"], r["instance_types"], Point.of(r).label(), r["nodes"], r["requests"], r["errors"],
                       *(_at(r, key, q) for _, key in _PERCENTILES for q in QUANTILES), r["output_tps"],
                       r["steady_output_tps"], flags])
    return t


def _searches(rows: list[dict]) -> Table:
    t = Table("searches", "Largest load within the SLOs",
              [Column("node"), Column("scenario"), Column("instance type"), Column("control"), Column("boundary"),
               Column("verified"), Column("binding SLO"), Column("output tok/s at it", TPS), Column("SLOs")],
              caption="Each node's search (`report --search RUN_ID` shows its probes): the largest value whose "
                      "verification probe met every SLO on its one-sided 95 % upper bound; by scenario and "
                      "instance type.")
    for r in rows:
        boundary = f"{r['boundary']:g}" if r["found"] else "none (not even the first probe)"
        t.rows.append([r["agent_id"], r["scenario"], r["instance_type"], r["control"], boundary,
                       "yes" if r["verified"] else "no", r["binding"], r["output_tps"] if r["found"] else None,
                       r["slo"]])
    return t


def _at(row: dict, key: str, q: float) -> float | None:
    """The value at quantile `q` of the row's percentile array `key`; None where it has none, and where no
    request succeeded (ClickHouse's quantiles over no value read 0)."""
    percentiles = Percentiles.of(row[key], QUANTILES)
    if percentiles is None or row["requests"] <= row["errors"]:
        return None
    return percentiles.at(q)
