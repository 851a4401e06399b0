"""What the HTML report shows beyond the tables: each series' distributions, its devices over time, and
its workload.

Distributions: per series and sweep point (mode, concurrency, rate: two rates are two points), TTFT and
per-token ITL at the 2nd..98th percentile in steps of 2 (49 levels) plus min and max, computed in ClickHouse (`quantiles`: a reservoir of 8192 values per
step, kept with the step's results and merged over the point's steps; a CDF drawn at 49 levels does not need
exact values). Devices over time: per second, the mean accelerator utilisation over the node's devices and the
node's power (mean per device × devices), with each step's start and end for shading; at most
TIMELINE_POINTS per series (a one-hour run has 3,600 seconds; a chart 450 px wide shows no more).
Workload: the plan each run stored (`runs.config_json`), in a line a reader can check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from siliconbench.collector.device_views import timeline_read
from siliconbench.collector.levels import SPREAD_LEVELS, sql_levels
from siliconbench.collector.step_views import RUNS_WHERE, Need, spread_select
from siliconbench.collector.points import CLOSED, Point
from siliconbench.collector.rollups import Series
from siliconbench.collector.store import Store

LEVELS = SPREAD_LEVELS
_LEVELS_SQL = sql_levels(LEVELS)

# A sweep point's distribution merges its steps' states (view step_spread: kept with the step's results,
# collector/kept.py, or computed from the rows of a step not kept yet).
DISTRIBUTION_SQL = f"""
SELECT run_id, agent_id, ifNull(s.mode, if(d.concurrency = 0, 'open', 'closed')) AS point_mode,
       d.concurrency AS point_concurrency, ifNull(s.rate_rps, 0) AS point_rate,
       quantilesIfMerge({_LEVELS_SQL})(d.ttft_spread), min(d.ttft_spread_min), max(d.ttft_spread_max),
       quantilesArrayIfMerge({_LEVELS_SQL})(d.itl_token_spread), min(d.itl_token_spread_min),
       max(d.itl_token_spread_max)
FROM ({{spread}}) AS d
LEFT JOIN (SELECT run_id, agent_id, step, any(mode) AS mode, any(rate_rps) AS rate_rps FROM {{db}}.steps
           WHERE has({{runs:Array(String)}}, run_id) GROUP BY run_id, agent_id, step) AS s
    USING (run_id, agent_id, step)
WHERE has({{runs:Array(String)}}, run_id)
GROUP BY run_id, agent_id, point_mode, point_concurrency, point_rate
ORDER BY run_id, agent_id, point_mode, point_concurrency, point_rate
SETTINGS join_use_nulls = 1
"""

TIMELINE_POINTS = 600

STEPS_SQL = """
SELECT run_id, agent_id, any(mode), concurrency, any(rate_rps), toUnixTimestamp64Milli(min(start_time)) / 1e3,
       toUnixTimestamp64Milli(max(end_time)) / 1e3
FROM {db}.steps
WHERE has({runs:Array(String)}, run_id)
GROUP BY run_id, agent_id, step, repetition, concurrency
ORDER BY run_id, agent_id, 6
"""

WORKLOAD_SQL = """
SELECT run_id, any(config_json) FROM {db}.runs
WHERE phase = 'start' AND has({runs:Array(String)}, run_id)
GROUP BY run_id
"""


@dataclass(frozen=True, slots=True)
class Distribution:
    """One metric of one series at one sweep point: values at LEVELS, with the extremes."""

    values: tuple[float, ...]
    low: float
    high: float

    def cdf(self) -> list[tuple[float, float]]:
        """(value, fraction at or below it) from min to max: the points of a CDF line."""
        return [(self.low, 0.0), *zip(self.values, LEVELS), (self.high, 1.0)]


@dataclass(slots=True)
class Timeline:
    """One series' devices over time: (unix second, utilisation %, node power W) and its steps as
    (its short label: 'c=8', '4 req/s', start, end) in unix seconds. NaN where a second has no such sample."""

    samples: list[tuple[float, float, float]] = field(default_factory=list)
    steps: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass(slots=True)
class Spread:
    """Series key -> sweep point -> metric ("ttft_ms", "itl_token_ms") -> Distribution; series key ->
    Timeline; run id -> workload."""

    distributions: dict[tuple[str, str], dict[Point, dict[str, Distribution]]] = field(default_factory=dict)
    timelines: dict[tuple[str, str], Timeline] = field(default_factory=dict)
    workloads: dict[str, str] = field(default_factory=dict)

    def points(self, key: tuple[str, str]) -> list[Point]:
        """The series' sweep points with a distribution, in the report's order."""
        return sorted(self.distributions.get(key, {}), key=Point.order)

    def at(self, key: tuple[str, str], point: Point, metric: str) -> Distribution | None:
        return self.distributions.get(key, {}).get(point, {}).get(metric)


def load_spread(store: Store, series: list[Series], need: Need | None = None) -> Spread:
    """`need` (step_views.need): whether any step of the series is not kept (None: as if some were)."""
    runs = sorted({s.run_id for s in series})
    spread = Spread()
    distributions = DISTRIBUTION_SQL.replace("{spread}", spread_select(RUNS_WHERE, need is None or need.compute))
    for run_id, agent_id, mode, concurrency, rate, ttft, ttft_lo, ttft_hi, itl, itl_lo, itl_hi in store.query(
            distributions, {"runs": runs}).result_rows:
        metrics = {}
        if ttft and _finite(ttft_lo, ttft_hi):
            metrics["ttft_ms"] = Distribution(tuple(ttft), ttft_lo, ttft_hi)
        if itl and _finite(itl_lo, itl_hi):
            metrics["itl_token_ms"] = Distribution(tuple(itl), itl_lo, itl_hi)
        point = Point.of({"mode": mode, "concurrency": concurrency, "rate_rps": rate})
        spread.distributions.setdefault((run_id, agent_id), {})[point] = metrics
    for run_id, agent_id, second, util, power in store.query(
            timeline_read(RUNS_WHERE, need is None or need.compute_devices), {"runs": runs}).result_rows:
        spread.timelines.setdefault((run_id, agent_id), Timeline()).samples.append((float(second), util, power))
    for run_id, agent_id, mode, concurrency, rate, start, end in store.query(STEPS_SQL, {"runs": runs}).result_rows:
        if (run_id, agent_id) in spread.timelines:
            label = f"{rate:g} req/s" if mode != CLOSED else f"c={concurrency}"
            spread.timelines[(run_id, agent_id)].steps.append((label, float(start), float(end)))
    for timeline in spread.timelines.values():
        every = -(-len(timeline.samples) // TIMELINE_POINTS)  # ceil: keep every n-th second
        timeline.samples = timeline.samples[::every]
    for run_id, config in store.query(WORKLOAD_SQL, {"runs": runs}).result_rows:
        spread.workloads[run_id] = describe_workload(config)
    return spread


def _finite(*values: float | None) -> bool:
    return all(v is not None and v == v and abs(v) != float("inf") for v in values)


def describe_workload(config_json: str) -> str:
    """The plan in one line: steps, prompt and output length, endpoint, repetitions."""
    try:
        plan = json.loads(config_json)
    except ValueError:
        return "unknown (the run stored no readable plan)"
    if not isinstance(plan, dict) or not plan:
        return "unknown (the run stored no readable plan)"
    steps = []
    if plan.get("concurrency"):
        steps.append("concurrency " + ", ".join(str(c) for c in plan["concurrency"]))
    if plan.get("rates"):
        steps.append(f"{plan.get('arrival', '')} rates " + ", ".join(f"{r:g}" for r in plan["rates"]) + " req/s")
    source = f"dataset {plan['dataset']}" if plan.get("dataset") else f"{plan.get('input_tokens', '?')} prompt tokens"
    bound = (f"{plan.get('requests_per_step')} requests/step" if plan.get("requests_per_step")
             else f"{plan.get('duration_s', 0):g} s/step")
    return (f"{'; '.join(steps) or 'custom steps'}; {source}, {plan.get('output_tokens', '?')} output tokens; "
            f"{bound}; {plan.get('repetitions', '?')} repetitions; /v1/{plan.get('endpoint', 'completions')}")
