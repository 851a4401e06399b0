"""JSON: the whole report — series, tables (raw values), findings, sweep points, steps and devices; for
the fleet report, the run's state, its nodes and the scenario rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

from siliconbench.collector.reports.escape import json_text
from siliconbench.collector.reports.fleet import FleetReport
from siliconbench.collector.reports.cost import cost_figures
from siliconbench.collector.reports.definitions import DEFINITIONS
from siliconbench.collector.reports.header import measured, single_run_command, step_results
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.verdict import banners


def _clean(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def render(report: Report) -> str:
    doc = {
        "title": report.title,
        "generated_at": report.generated_at,
        "store": report.store,
        "selection": report.selection.describe(),
        "simulated": report.simulated,
        "unfinished": report.unfinished,
        "run_states": {run_id: {"state": life.state, "detail": life.detail} for run_id, life in report.runs.items()},
        "publishable": report.publishable,
        "banners": banners(report),
        "flags": [dataclasses.asdict(f) for f in report.flags],
        "baseline": report.baseline,
        "slo": {k: v for k, v in report.slo.params().items() if math.isfinite(v)},
        "price": {"region": report.region, "kind": report.price_kind},
        "series": [{**dataclasses.asdict(s), "accelerators": s.accelerators} for s in report.series],
        "tables": [{"key": t.key, "title": t.title, "formula": t.caption,
                    "columns": [c.name for c in t.columns], "units": [c.kind for c in t.columns], "rows": t.rows,
                    "findings": [dataclasses.asdict(f) for f in t.findings]} for t in report.tables],
        "findings": [dataclasses.asdict(f) for f in report.findings],
        "costs": _costs(report),
        "points": [p.as_row() for p in report.figures.points],
        "steps": [s.as_row() for s in report.figures.steps],  # each `kept`: read kept (1) or computed now (0)
        "step_results": step_results(report) if report.figures.steps else None,
        "nodes": [n.as_row() for n in report.figures.nodes],
        "devices": [d.as_row() for d in report.figures.devices],
        "definitions": list(DEFINITIONS),
    }
    return json_text(_clean(doc)) + "\n"


def _costs(report: Report) -> list[dict]:
    return [{"scenario": c.series.label, "instance_type": c.series.instance_type,
             "price": dataclasses.asdict(c.price) if c.price else None, "note": c.note, **cost_figures(c)}
            for c in report.costs]


def render_fleet(report: FleetReport) -> str:
    life = report.life
    nodes = [{"agent_id": n.agent_id, "node": n.node_name, "scenario": n.scenario, "instance_type": n.instance_type,
              "state": n.state, "steps_done": n.step, "steps_total": n.steps_total, "detail": n.detail}
             for n in life.nodes]
    doc = {"run_id": report.run_id, "state": life.state, "detail": life.detail, "generated_at": report.generated_at,
           "measured": dict(measured(report.detail)), "nodes": nodes, "scenarios": report.scenarios,
           "formula": report.table("scenarios").caption, "costs": _costs(report.detail),
           "per_node_report": single_run_command(report.run_id, "json")}
    searches = [t for t in report.tables if t.key == "searches"]
    if searches:
        doc["searches"] = [dict(zip((c.name for c in searches[0].columns), row)) for row in searches[0].rows]
    return json_text(_clean(doc)) + "\n"
