"""Markdown: the reference report's five tables (plus devices and every step), each with its formula,
a 'vs baseline' column, and the consistency warnings beside the rows and under the table; the fleet
report's node and scenario tables the same way."""

from __future__ import annotations

from siliconbench.collector.reports.fleet import FleetReport
from siliconbench.collector.reports.model import DEFINITIONS, Report, Table, banners
from siliconbench.collector.reports.text import fmt, unit


def render(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for banner in banners(report):
        lines += [f"> {'✔' if report.publishable else '⚠'} **{banner}**", ""]
    if report.simulated:
        lines += [f"> ⚠ **SIMULATED target** — {', '.join(report.simulated)} ran against the siliconbench "
                  "simulator, not a real vLLM: the figures test the pipeline, not the hardware.", ""]
    lines += _meta(report) + [""]
    for table in report.tables:
        lines += _table(table) + [""]
    lines += ["## Definitions", ""] + [f"- {d}" for d in DEFINITIONS]
    return "\n".join(lines) + "\n"


def render_fleet(report: FleetReport) -> str:
    lines = [f"# {report.title}", ""]
    for banner in report.banners():
        lines += [f"> ⚠ **{banner}**", ""]
    for table in report.tables:
        lines += _table(table) + [""]
    lines.append(f"Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC.")
    return "\n".join(lines) + "\n"


def _meta(report: Report) -> list[str]:
    out = [f"- generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC from {report.store}; {report.selection.describe()}",
           f"- baseline: **{report.baseline}**; SLO for goodput: {report.slo.describe()}",
           "", "| Scenario | Instance | Accelerators | Model | Run | Node | Target | Started (UTC) |",
           "|---|---|---|---|---|---|---|---|"]
    for s in report.series:
        target = f"{s.target_url} {'**SIMULATED**' if s.simulated else 'vLLM ' + (s.target_version or '?')}"
        out.append(f"| {s.label} | {s.instance_type or '–'} | {s.accelerators} | {s.model} | {s.run_id} | "
                   f"{s.agent_id} | {target} | {s.started:%Y-%m-%d %H:%M:%S} |")
    return out


def _table(table: Table) -> list[str]:
    out = [f"## {table.title}", ""]
    if not table.rows:
        return out + [f"_{table.caption}_"]
    out.append("| " + " | ".join(c.name + unit(c.kind) for c in table.columns) + " |")
    out.append("|" + "|".join("---" if c.kind == "text" else "---:" for c in table.columns) + "|")
    for row in table.rows:
        out.append("| " + " | ".join(fmt(v, c.kind).replace("|", "\\|") for v, c in zip(row, table.columns)) + " |")
    out += ["", f"Formula: {table.caption}"]
    if table.findings:
        out += [""] + [f"- {f.line()}" for f in table.findings]
    return out
