"""HTML: one self-contained page (inline CSS and SVG, nothing fetched) with the charts — per-scenario
bars for TTFT, ITL, throughput and cost, throughput-vs-concurrency lines, a latency-vs-throughput
curve — followed by every table of the Markdown report with its formula and warnings."""

from __future__ import annotations

from html import escape

from siliconbench.collector.points import Point
from siliconbench.collector.reports import model as m
from siliconbench.collector.reports.fleet import FleetReport
from siliconbench.collector.reports.model import DEFINITIONS, Report, Table, banners, cost_figures
from siliconbench.collector.reports.svg import bar_chart, line_chart
from siliconbench.collector.reports.text import fmt, unit

_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1360px}
h1{font-size:24px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border:1px solid #ccc;padding:3px 6px}
th{background:#f3f3f3} td.n{text-align:right} .banner{background:#fff3cd;border:2px solid #d39e00;padding:10px;
font-size:16px;font-weight:bold;margin:10px 0} .warn{color:#a15c00} .formula{color:#555;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:12px} .charts svg{border:1px solid #ddd}
"""


def render(report: Report) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>"]
    parts += [f'<div class="banner">{"✔" if report.publishable else "⚠"} {escape(banner)}</div>'
              for banner in banners(report)]
    if report.simulated:
        parts.append(f'<div class="banner">⚠ SIMULATED target — {escape(", ".join(report.simulated))} ran against '
                     "the siliconbench simulator, not a real vLLM: the figures test the pipeline, not the hardware.</div>")
    parts.append(f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC from {escape(report.store)}; "
                 f"{escape(report.selection.describe())}; baseline <b>{escape(report.baseline)}</b>; "
                 f"SLO for goodput: {escape(report.slo.describe())}.</p>")
    parts.append('<div class="charts">' + "\n".join(_charts(report)) + "</div>")
    for table in report.tables:
        parts.append(_table(table))
    parts.append("<h2>Definitions</h2><ul>" + "".join(f"<li>{escape(d)}</li>" for d in DEFINITIONS) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_fleet(report: FleetReport) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>"]
    parts += [f'<div class="banner">⚠ {escape(banner)}</div>' for banner in report.banners()]
    parts += [_table(table) for table in report.tables]
    parts.append(f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC.</p></body></html>")
    return "\n".join(parts) + "\n"


def _charts(report: Report) -> list[str]:
    fig = report.figures
    labels = [s.label for s in report.series]
    ttft = [m._q(m.lowest(fig.points_of(s)), "ttft_ms", 0) for s in report.series]
    itl = [m._q(m.lowest(fig.points_of(s)), "itl_token_ms", 0) for s in report.series]
    tps = [m._get(m.peak(fig.points_of(s)), "output_tps") for s in report.series]
    charts = [bar_chart("TTFT p50 (lowest concurrency)", labels, ttft, "ms"),
              bar_chart("ITL per token p50 (lowest concurrency)", labels, itl, "ms"),
              bar_chart("Peak output throughput", labels, tps, "output tok/s")]
    if report.costs:
        cost = [cost_figures(c)["usd_per_m_output_at_peak"] for c in report.costs]
        charts.append(bar_chart("$ per 1M output tokens at peak", [c.series.label for c in report.costs], cost, "USD"))
    scaling = [(s.label, [(p["concurrency"], m._get(p, "output_tps") or 0.0) for p in fig.points_of(s)
                          if not Point.of(p).open_loop]) for s in report.series]
    offered = [(s.label, [(p["rate_rps"], m._q(p, "e2e_ms", 0) or 0.0) for p in fig.points_of(s)
                          if Point.of(p).open_loop and p["rate_rps"]]) for s in report.series]
    charts.append(line_chart("Throughput vs concurrency", scaling, "concurrency", "output tok/s"))
    if any(points for _, points in offered):
        charts.append(line_chart("Latency vs offered load (open-loop steps)", offered, "offered req/s",
                                 "E2E p50 (ms)"))
    curve = [(s.label, [(m._get(p, "output_tps") or 0.0, m._q(p, "e2e_ms", 0) or 0.0) for p in fig.points_of(s)])
             for s in report.series]
    charts.append(line_chart("Latency vs throughput (each point a sweep point)", curve, "output tok/s", "E2E p50 (ms)"))
    return charts


def _table(table: Table) -> str:
    out = [f"<h2>{escape(table.title)}</h2>"]
    if not table.rows:
        return out[0] + f'<p class="formula">{escape(table.caption)}</p>'
    out.append("<table><tr>" + "".join(f"<th>{escape(c.name + unit(c.kind))}</th>" for c in table.columns) + "</tr>")
    for row in table.rows:
        cells = []
        for value, column in zip(row, table.columns):
            text = escape(fmt(value, column.kind))
            cls = ' class="warn"' if column.name == "checks" and value else (
                ' class="n"' if column.kind != m.TEXT else "")
            cells.append(f"<td{cls}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    out.append(f'<p class="formula">Formula: {escape(table.caption)}</p>')
    if table.findings:
        out.append("<ul>" + "".join(f'<li class="warn">{escape(f.line())}</li>' for f in table.findings) + "</ul>")
    return "\n".join(out)
