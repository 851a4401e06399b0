"""Reading the rollup views (collector/views.py) for reports: which series a report covers, and their
figures per step, per sweep point (median of repetitions) and per node. Aggregation runs in ClickHouse,
but for the sweep points, summarised from the step rows already read (collector/sweep.py); Python receives
one row per step, node point or device. Filters are bound parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from siliconbench.collector.errors import InvalidOption, RunNotFound
from siliconbench.collector.figures import DeviceRow, Figures, NodeRow, PointRow, StepRow, record
from siliconbench.collector.lifecycle import lifecycle
from siliconbench.collector.need import need as find_need
from siliconbench.collector.store import Store
from siliconbench.collector.device_views import device_rollups_select, node_sweep_select
from siliconbench.collector.step_views import RUNS_WHERE, Need, results_select, rollups_select
from siliconbench.collector.sweep import sweep_rows
from siliconbench.collector.workload import plan_of
from siliconbench.core.errors import ConfigError
from siliconbench.core.slo import GOODPUT_KEYS, parse_goodput_slo

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objectives for goodput (core/slo.py GOODPUT_KEYS); an absent one is infinite (always
    met). `origin` says where they came from, as the report states it: '--slo', "the run's" (stored with
    the run by the agent's --slo), or '' (none given)."""

    ttft_ms: float = math.inf
    ttfa_ms: float = math.inf  # time to first answer token: a request that never answered misses it
    itl_ms: float = math.inf   # the request's mean gap between content-bearing chunks
    tpot_ms: float = math.inf
    e2e_ms: float = math.inf
    origin: str = ""

    def params(self) -> dict[str, float]:
        return {key: getattr(self, key) for key in GOODPUT_KEYS}

    @property
    def given(self) -> bool:
        return any(math.isfinite(v) for v in self.params().values())

    def describe(self) -> str:
        given = [f"{name.removesuffix('_ms').upper()} ≤ {value:g} ms" for name, value in self.params().items()
                 if math.isfinite(value)]
        if not given:
            return "none (every successful request counts)"
        return ", ".join(given) + (f" ({self.origin})" if self.origin else "")


def parse_slo(items: list[str]) -> Slo:
    """['ttft_ms=500', 'tpot_ms=50,itl_ms=10'] -> Slo from --slo; InvalidOption naming the bad item otherwise."""
    try:
        values = parse_goodput_slo(items)
    except ConfigError as e:
        raise InvalidOption(str(e)) from None
    return Slo(**values, origin="--slo") if values else Slo()


def run_slo(series: list[Series]) -> Slo:
    """The SLO the runs were given (the agent's --slo, stored with each run's plan), when they agree."""
    stated = {tuple(sorted(plan.slo.items())) if (plan := plan_of(s.config_json)) else () for s in series}
    if len(stated) != 1 or not (values := dict(next(iter(stated)))):
        return Slo()
    return Slo(**values, origin="the run's" if len({s.run_id for s in series}) == 1 else "the runs'")


@dataclass(frozen=True, slots=True)
class Series:
    """One run on one node: the unit every table compares."""

    run_id: str
    agent_id: str
    scenario: str
    started: object
    target_url: str
    model: str
    simulated: bool
    target_version: str
    instance_type: str
    accelerator_kind: str
    accelerator_count: int
    accelerator_model: str
    config_json: str = ""    # the plan the agent ran (collector/workload.py reads it)
    label: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.agent_id)

    @property
    def accelerators(self) -> str:
        if not self.accelerator_count:
            return self.accelerator_kind or "none"
        return f"{self.accelerator_count}× {self.accelerator_model or self.accelerator_kind}"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which runs a report covers: the runs named, the runs of the scenarios named, or every run."""

    runs: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.runs:
            return "runs " + ", ".join(self.runs)
        if self.scenarios:
            return "scenarios " + ", ".join(self.scenarios)
        return "all runs"


SERIES_SQL = """
SELECT r.run_id, r.agent_id, any(r.scenario), min(r.time), any(r.target_url), any(r.model), max(r.simulated),
       any(r.target_version), any(n.instance_type), any(n.accelerator_kind), any(n.accelerator_count),
       any(n.accelerator_model), any(r.config_json)
FROM {db}.runs AS r
LEFT JOIN (SELECT * FROM {db}.nodes FINAL) AS n ON n.agent_id = r.agent_id
WHERE r.phase = 'start'
  AND (empty({runs:Array(String)}) OR has({runs:Array(String)}, r.run_id))
  AND (empty({scenarios:Array(String)}) OR has({scenarios:Array(String)}, r.scenario))
GROUP BY r.run_id, r.agent_id
ORDER BY any(r.scenario), min(r.time), r.agent_id
"""

RUNS_SQL = """
SELECT run_id, min(time) AS started, any(scenario), any(model), max(simulated), count(DISTINCT agent_id),
       any(target_url)
FROM {db}.runs WHERE phase = 'start'
GROUP BY run_id ORDER BY started DESC
"""


def select_series(store: Store, selection: Selection) -> list[Series]:
    """The series of the selection, labelled by scenario (or run id) and unique; RunNotFound for a
    run or scenario that is not in the store."""
    rows = store.query(SERIES_SQL, {"runs": list(selection.runs), "scenarios": list(selection.scenarios)}).result_rows
    found = [Series(*row) for row in rows]
    missing = sorted(set(selection.runs) - {s.run_id for s in found})
    missing += sorted(set(selection.scenarios) - {s.scenario for s in found})
    if missing or not found:
        what = ", ".join(repr(m) for m in missing) if missing else selection.describe()
        raise RunNotFound(f"no run matches {what} in {store.location.shown}; "
                          "`siliconbench-collector runs list` lists the runs and their scenarios")
    return _labelled(found)


def _labelled(series: list[Series]) -> list[Series]:
    base = [s.scenario or s.run_id for s in series]
    out = []
    for s, label in zip(series, base):
        if base.count(label) > 1:
            same_run = sum(1 for t, b in zip(series, base) if b == label and t.run_id == s.run_id) > 1
            label = f"{label} ({s.agent_id})" if same_run else f"{label} ({s.run_id})"
        out.append(_replace_label(s, label))
    return out


def _replace_label(s: Series, label: str) -> Series:
    from dataclasses import replace

    return replace(s, label=label)


def _dicts(result) -> list[dict[str, Any]]:
    names = result.column_names
    return [dict(zip(names, row)) for row in result.result_rows]


def _run_ids(series: list[Series]) -> list[str]:
    return sorted({s.run_id for s in series})




# Per device and sweep point (collector/points.py; median of the repetitions); J/output token is the device's energy over the
# step ÷ the step's output tokens (its share of the node's figure). Devices in natural order (nc2 before nc10),
# each device's sweep points in order; nodes by sweep point: the same order at every read.
DEVICE_STEPS_SQL = """
SELECT d.run_id AS run_id, d.agent_id AS agent_id, d.mode AS mode, d.concurrency AS concurrency,
       d.rate_rps AS rate_rps, d.source AS source, d.device AS device, count() AS repetitions,
       median(d.util_mean_pct) AS util_mean_pct, medianForEach(d.util_pct) AS util_pct,
       max(d.mem_peak_bytes) AS mem_peak_bytes, median(d.power_mean_w) AS power_mean_w,
       median(d.energy_j) AS energy_j, median(d.energy_j / nullIf(r.tokens_out, 0)) AS j_per_output_token,
       any(d.energy_method) AS energy_method
FROM ({devices}) AS d
LEFT JOIN (SELECT run_id, agent_id, step, tokens_out FROM ({rollups})) AS r
    ON r.run_id = d.run_id AND r.agent_id = d.agent_id AND r.step = d.step
WHERE has({runs:Array(String)}, d.run_id)
GROUP BY d.run_id, d.agent_id, d.mode, d.concurrency, d.rate_rps, d.source, d.device
ORDER BY run_id, agent_id, source, replaceRegexpOne(device, '[0-9]+$', ''),
         toUInt64OrZero(extract(device, '[0-9]+$')), device, mode, concurrency, rate_rps
SETTINGS join_use_nulls = 1
"""


def load_figures(store: Store, series: list[Series], slo: Slo, need: Need | None = None) -> Figures:
    """The series' figures from the views, each row built once as its typed record (collector/figures.py);
    `need` (step_views.need): what their steps need beyond kept results (None: found here)."""
    return start_figures(store, series, slo, need)()


def start_figures(store: Store, series: list[Series], slo: Slo, need: Need | None = None) -> Callable[[], Figures]:
    """load_figures with its reads started at once on the store's readers (Store.started), so that a caller
    can start its other reads behind them: the figures, once they have ended."""
    params = {"runs": _run_ids(series), **slo.params()}
    need = need or find_need(store, RUNS_WHERE, params)
    steps_sql = f"SELECT * FROM ({results_select(RUNS_WHERE, need)}) ORDER BY run_id, agent_id, step"
    keys = {s.key for s in series}

    def mine(sql: str, query_params: dict, build: Callable[[dict], R]) -> list[R]:
        return [build(row) for row in _dicts(store.query(sql, query_params)) if (row["run_id"], row["agent_id"]) in keys]

    runs = {"runs": params["runs"]}
    compute_devices = need.compute_devices
    nodes_sql = (f"SELECT * FROM ({node_sweep_select(RUNS_WHERE, compute_devices, not need.compute)}) "
                 "ORDER BY run_id, agent_id, mode, concurrency, rate_rps")
    devices_sql = DEVICE_STEPS_SQL.replace("{devices}", device_rollups_select(RUNS_WHERE, compute_devices)).replace(
        "{rollups}", rollups_select(RUNS_WHERE, kept=not need.compute))
    steps = store.started(lambda: mine(steps_sql, params, dict))  # read once: the points are summarised from these
    nodes = store.started(lambda: mine(nodes_sql, runs, partial(record, NodeRow)))
    devices = store.started(lambda: mine(devices_sql, runs, partial(record, DeviceRow)))

    def figures() -> Figures:
        rows = steps.result()
        return Figures(points=[PointRow.of(row) for row in sweep_rows(rows)], steps=[record(StepRow, row) for row in rows],
                       nodes=nodes.result(), devices=devices.result())
    return figures


def list_runs(store: Store) -> list[tuple]:
    """(run_id, started, scenario, model, simulated, nodes, target, state) per run, newest first; state
    as collector/lifecycle.py words it ('interrupted (stopped by the user ...)')."""
    return [(*row, lifecycle(store, row[0]).describe()) for row in store.query(RUNS_SQL).result_rows]
