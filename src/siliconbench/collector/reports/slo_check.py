"""`check-slo`'s verdict in markdown, csv or json: per node, each SLO's measured value against its limit,
held or broken; the run's verdict on top (held only when every node held every SLO)."""

from __future__ import annotations

import csv
import io

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.reports.escape import csv_cell, json_text
from siliconbench.collector.reports.escape import markdown as md
from siliconbench.collector.slo_check import NodeVerdict, SloCheck
from siliconbench.core.slo import Objective

FORMATS = ("markdown", "csv", "json")


def render_slo_check(check: SloCheck, fmt: str) -> str:
    """The check in `fmt`; InvalidOption naming the formats otherwise."""
    render = {"markdown": _markdown, "csv": _csv, "json": _json}.get(fmt.lower())
    if render is None:
        raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    return render(check)


def verdict_line(check: SloCheck) -> str:
    """One line: held on every node, or which nodes broke which SLOs."""
    slo = ", ".join(f"{o.key}<={o.limit:g}" for o in check.objectives)
    if check.held:
        return f"SLOs held on every node ({len(check.nodes)}) of run {check.run_id}: {slo}"
    if not check.nodes:
        return f"SLOs not shown to hold: run {check.run_id} has no node"
    broken = [n for n in check.nodes if not n.held]
    which = "; ".join(f"{n.label} ({', '.join(n.broken)})" for n in broken)
    return f"SLOs broken on {len(broken)} of {len(check.nodes)} nodes of run {check.run_id}: {which}; SLOs {slo}"


def _cell(objective: Objective, value: float | None) -> str:
    limit = objective.show(objective.limit)
    if value is None:
        return f"no sample (limit {limit})"
    return f"{objective.show(value)} {'<=' if value <= objective.limit else '>'} {limit}"


def _notes(check: SloCheck) -> list[str]:
    notes = ["SIMULATED target: these figures come from the simulator, not a real server."] if check.simulated else []
    if not check.finished:
        notes.append(f"The run is {check.state}: the verdict covers only what it stored so far.")
    return notes


def _markdown(check: SloCheck) -> str:
    out = [f"# siliconbench SLO check of run {md(check.run_id)}", "", *(md(n) for n in _notes(check)),
           f"**{md(verdict_line(check))}**", "",
           "Exact percentiles over every request each node stored for the run; a node without a sample did not hold.",
           "", "| node | requests | " + " | ".join(f"{md(o.label)} (≤ {md(o.show(o.limit))})" for o in check.objectives)
           + " | verdict |", "|---|---|" + "---|" * len(check.objectives) + "---|"]
    for node in check.nodes:
        cells = [md(_cell(o, node.values[o.key])) for o in check.objectives]
        out.append(f"| {md(node.label)} | {node.requests} | " + " | ".join(cells)
                   + f" | {'held' if node.held else 'broken'} |")
    return "\n".join(out) + "\n"


def _csv(check: SloCheck) -> str:
    """One row per node and SLO."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["run_id", "node", "agent_id", "instance_type", "scenario", "requests", "errors", "slo", "limit",
                     "value", "held", "simulated"])
    for node in check.nodes:
        for o in check.objectives:
            value = node.values[o.key]
            writer.writerow([csv_cell(v) for v in (check.run_id, node.label, node.agent_id, node.instance_type,
                                                   node.scenario, node.requests, node.errors, o.key, o.limit,
                                                   "" if value is None else value, o.key not in node.broken,
                                                   check.simulated)])
    return text.getvalue()


def _node(node: NodeVerdict) -> dict:
    return {"agent_id": node.agent_id, "node": node.label, "instance_type": node.instance_type,
            "scenario": node.scenario, "requests": node.requests, "errors": node.errors, "values": node.values,
            "held": node.held, "broken": list(node.broken)}


def _json(check: SloCheck) -> str:
    return json_text({"run_id": check.run_id, "state": check.state, "finished": check.finished,
                      "simulated": check.simulated, "held": check.held, "verdict": verdict_line(check),
                      "slo": {o.key: o.limit for o in check.objectives},
                      "nodes": [_node(n) for n in check.nodes]}) + "\n"
