"""Markdown: the reference report's five tables (plus devices and every step), each with its formula,
a 'vs baseline' column, and the consistency warnings beside the rows and under the table; the fleet
report's node and scenario tables the same way."""

from __future__ import annotations

from siliconbench.collector.reports.escape import markdown as esc
from siliconbench.collector.reports.fleet import FleetReport
from siliconbench.collector.reports.folded import flag_lines, table_lines
from siliconbench.collector.reports.header import measured, single_run_command, step_results
from siliconbench.collector.reports.definitions import DEFINITIONS
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import Table
from siliconbench.collector.reports.verdict import banners
from siliconbench.collector.reports.text import fmt, unit


def render(report: Report) -> str:
    lines = [f"# {esc(report.title)}", ""]
    for banner in banners(report):
        lines += [f"> {'✔' if report.publishable else '⚠'} **{esc(banner)}**", ""]
    if report.simulated:
        lines += [f"> ⚠ **SIMULATED target** — {esc(', '.join(report.simulated))} ran against the siliconbench "
                  "simulator, not a real vLLM: the figures test the pipeline, not the hardware.", ""]
    lines += _meta(report) + [""]
    flags = flag_lines(report)
    if flags:
        lines += ["## Steps flagged", "", "Marked beside their figures in every table below; each reason once:", ""]
        lines += [f"- {esc(line)}" for line in flags] + [""]
    for table in report.tables:
        lines += _table(table) + [""]
    lines += ["## Definitions", ""] + [f"- {d}" for d in DEFINITIONS]
    return "\n".join(lines) + "\n"


def render_fleet(report: FleetReport) -> str:
    lines = [f"# {esc(report.title)}", ""]
    for banner in report.banners():
        lines += [f"> ⚠ **{esc(banner)}**", ""]
    lines += [f"- **{esc(what)}**: {esc(value)}" for what, value in measured(report.detail)]
    lines += ["", f"Every table of the single-run report, per node: `{single_run_command(report.run_id, 'markdown')}`",
              ""]
    for table in report.tables + [t for t in report.detail.tables if t.key == "cost"]:
        lines += _table(table) + [""]
    lines.append(f"Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC.")
    return "\n".join(lines) + "\n"


def _meta(report: Report) -> list[str]:
    out = [f"- generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC from {esc(report.store)}; "
           f"{esc(report.selection.describe())}",
           f"- baseline: **{esc(report.baseline)}**; SLO for goodput: {esc(report.slo.describe())}",
           *([f"- step results: {esc(step_results(report))}"] if report.figures.steps else []),
           "", "| Scenario | Instance | Accelerators | Model | Run | Node | Target | Started (UTC) |",
           "|---|---|---|---|---|---|---|---|"]
    for s in report.series:
        target = f"{esc(s.target_url)} {'**SIMULATED**' if s.simulated else 'vLLM ' + esc(s.target_version or '?')}"
        cells = (s.label, s.instance_type or "–", s.accelerators, s.model, s.run_id, s.agent_id)
        out.append("| " + " | ".join(map(esc, cells)) + f" | {target} | {s.started:%Y-%m-%d %H:%M:%S} |")
    return out


def _table(table: Table) -> list[str]:
    out = [f"## {esc(table.title)}", ""]
    if not table.rows:
        return out + [f"_{esc(table.caption)}_"]
    out.append("| " + " | ".join(c.name + unit(c.kind) for c in table.columns) + " |")
    out.append("|" + "|".join("---" if c.kind == "text" else "---:" for c in table.columns) + "|")
    for row in table.rows:
        out.append("| " + " | ".join(esc(fmt(v, c.kind)) for v, c in zip(row, table.columns)) + " |")
    out += ["", f"Formula: {esc(table.caption)}"]
    found = table_lines(table)
    if found:
        out += [""] + [f"- {esc(line)}" for line in found]
    return out
