"""HTML: one self-contained page (inline CSS and SVG, nothing fetched). First the key results (each series'
peak output tok/s and the TTFT p99 it came at), what was measured (model, target and version, nodes,
instance types, accelerators, workload, run state, SIMULATED), then the series, each named by what
distinguishes it (run id in the series table and the tooltips), then the charts (charts.py), each with an
HTML legend that wraps, then every table of the Markdown report with its formula and warnings."""

from __future__ import annotations

import math

from siliconbench.collector.reports.escape import html as escape
from siliconbench.collector.reports.cost import cost_figures
from siliconbench.collector.reports.definitions import DEFINITIONS
from siliconbench.collector.reports.fleet import FleetReport
from siliconbench.collector.reports.folded import flag_lines, table_lines
from siliconbench.collector.reports.header import measured, single_run_command
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.picks import peak, q
from siliconbench.collector.reports.table import MS, TEXT, TPS, Table
from siliconbench.collector.reports.verdict import banners
from siliconbench.collector.reports import charts
from siliconbench.collector.reports.svg import Bar, Line, bar_chart, line_chart
from siliconbench.collector.rollups import Series
from siliconbench.collector.reports.text import fmt, unit

_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1360px}
h1{font-size:24px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:8px 0} th,td{border:1px solid #ccc;padding:3px 6px}
th{background:#f3f3f3} td.n{text-align:right} .banner{background:#fff3cd;border:2px solid #d39e00;padding:10px;
font-size:16px;font-weight:bold;margin:10px 0} .warn{color:#a15c00} .formula{color:#555;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start} .chart{margin:0;width:522px}
.chart svg{border:1px solid #ddd;display:block} .legend{list-style:none;padding:4px 0;margin:0;display:flex;
flex-wrap:wrap;gap:4px 14px;font-size:12px} .legend li{display:flex;align-items:center;gap:5px;max-width:100%}
.legend .name{overflow-wrap:anywhere} .sw{display:inline-block;width:12px;height:12px;flex:none}
table.header th{text-align:left;width:130px} table.header{font-size:14px;min-width:600px}
.key{background:#eef6ee;border:2px solid #3a7d44;padding:8px 12px;font-size:15px;margin:10px 0}
.key ul{margin:4px 0;padding-left:20px} .wide{overflow-x:auto;max-width:100%}
td.long{max-width:22em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
"""


def render(report: Report) -> str:
    names = series_names(report.series)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>"]
    parts += [f'<div class="banner">{"✔" if report.publishable else "⚠"} {escape(banner)}</div>'
              for banner in banners(report)]
    if report.simulated:
        parts.append(f'<div class="banner">⚠ SIMULATED target — {escape(", ".join(report.simulated))} ran against '
                     "the siliconbench simulator, not a real vLLM: the figures test the pipeline, not the hardware.</div>")
    parts.append(_key_results(report, names))
    parts.append(_header(report))
    parts.append(_series_table(report, names))
    parts.append(f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC from {escape(report.store)}; "
                 f"{escape(report.selection.describe())}; baseline <b>{escape(report.baseline)}</b>; "
                 f"SLO for goodput: {escape(report.slo.describe())}.</p>")
    flags = flag_lines(report)
    if flags:
        parts.append('<h2 id="flagged">Steps flagged</h2><p>Marked beside their figures in every table below; each '
                     'reason once:</p><ul>' + "".join(f'<li class="warn">{escape(line)}</li>' for line in flags) + "</ul>")
    parts += _charts(report, names)
    for table in report.tables:
        parts.append(_table(table))
    parts.append("<h2>Definitions</h2><ul>" + "".join(f"<li>{escape(d)}</li>" for d in DEFINITIONS) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def series_names(series: list[Series]) -> list[str]:
    """Each series named by what tells it from the others — the fewest of scenario, instance type, model,
    accelerators and node, in that order, among those that differ — rather than by its run id (which the
    tooltips and the series table give). Series alike in all of them are told apart by their start time."""
    facets = [lambda s: s.scenario and f"scenario {s.scenario}", lambda s: s.instance_type, lambda s: s.model,
              lambda s: s.accelerators, lambda s: s.agent_id]
    varying = ([f for f in facets if len({f(s) for s in series}) > 1]
               or [f for f in facets if any(f(s) for s in series)][:1])  # one series: what it ran on
    for used in range(1, len(varying) + 1):  # the fewest facets that tell every series apart
        names = [" · ".join(str(v) for v in (f(s) for f in varying[:used]) if v) or s.label for s in series]
        if len(set(names)) == len(names):
            break
    if len(set(names)) < len(names):
        names = [f"{n} · {s.started:%m-%d %H:%M:%S}" for n, s in zip(names, series)]
    seen: dict[str, int] = {}
    out = []
    for n in names:  # still alike (same second): numbered
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 and names.count(n) == 1 else f"{n} #{seen[n]}")
    return out


def _key_results(report: Report, names: list[str]) -> str:
    """The answer first: each series' peak output tok/s, where it came, the TTFT p99 it came at, and where its
    search ended when it ran one."""
    items = []
    for name, s in zip(names, report.series):
        top = peak(report.figures.points_of(s))
        said = ["no successful request"] if top is None else [
            f"peak {fmt(top.median.output_tps, TPS)} output tok/s at {top.point.label()}, "
            f"TTFT p99 {fmt(q(top.median.ttft_ms).p99, MS)} ms there"]
        said += [report.boundaries[s.key]] if s.key in report.boundaries else []
        items.append(f"<li><b>{escape(name)}</b>: {escape('; '.join(said))}</li>")
    return f'<div class="key" id="key-results"><b>Key results</b><ul>{"".join(items)}</ul></div>'


def _header(report: Report) -> str:
    """What was measured, before any figure (header.py)."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in measured(report))
    return f'<table class="header" id="measured">{body}</table>'


def _series_table(report: Report, names: list[str]) -> str:
    head = "<tr><th></th><th>Series</th><th>Scenario</th><th>Instance</th><th>Model</th><th>Node</th><th>Run</th></tr>"
    body = "".join(
        f'<tr><td>{charts.swatch(i)}</td><td>{escape(n)}</td><td>{escape(s.scenario or "–")}</td>'
        f"<td>{escape(s.instance_type or '–')}</td><td>{escape(s.model)}</td><td>{escape(s.agent_id)}</td>"
        f"<td>{escape(s.run_id)}</td></tr>" for i, (n, s) in enumerate(zip(names, report.series)))
    return f'<table class="series">{head}{body}</table>'


def render_fleet(report: FleetReport) -> str:
    """The fleet run: its banners, key results and what was measured as the single-run report has them, the
    charts per scenario and instance type (a series per node), the scenario and node tables, and cost."""
    detail = report.detail
    names = [" · ".join(v for v in (s.scenario and f"scenario {s.scenario}", s.instance_type) if v) or s.label
             for s in detail.series]
    if len(set(names)) < len(names):  # several nodes of one scenario and instance type: each by its node
        names = [f"{n} · {s.agent_id}" for n, s in zip(names, detail.series)]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>"]
    parts += [f'<div class="banner">⚠ {escape(banner)}</div>' for banner in report.banners()]
    parts += [_key_results(detail, names), _header(detail), _series_table(detail, names)]
    parts.append(f'<p id="per-node">Every table of the single-run report, per node: '
                 f"<code>{escape(single_run_command(report.run_id, 'html'))} -o report.html</code></p>")
    parts += _charts(detail, names)
    parts += [_table(table) for table in report.tables]
    parts += [_table(table) for table in detail.tables if table.key == "cost"]
    parts.append(f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC.</p></body></html>")
    return "\n".join(parts) + "\n"


def _tip(names: list[str], s: Series, i: int) -> str:
    return f"{names[i]} (run {s.run_id}, node {s.agent_id})"


def _charts(report: Report, names: list[str]) -> list[str]:
    tips = [_tip(names, s, i) for i, s in enumerate(report.series)]
    out = ['<h2>Charts</h2><div class="charts">']
    out += charts.closed_charts(report, names, tips)
    out += charts.open_charts(report, names, tips)
    out.append(charts.tradeoff_chart(report, names, tips))
    out += charts.distribution_charts(report, names)
    out += _energy(report, names, tips)
    out += _timelines(report, names, tips)
    out.append(_cost_chart(report, names, tips))
    out.append("</div>")
    return out


def _energy(report: Report, names: list[str], tips: list[str]) -> list[str]:
    """J per output token vs concurrency (closed-loop points), for the series whose devices report energy or power."""
    lines = []
    for i, s in enumerate(report.series):
        nodes = [(p.concurrency, report.figures.node_of(s, p.point))
                 for p in report.figures.points_of(s) if not p.point.open_loop]
        points = [(c, n.j_per_output_token if n is not None else None) for c, n in nodes]
        known: list[tuple[float, float]] = [(c, j) for c, j in points if j is not None]
        if known:
            lines.append(Line(i, known, tips[i]))
    if not lines:
        return []
    return [charts.figure(line_chart("Energy per output token vs concurrency", lines, "concurrency", "J / output token"),
                    names, [ln.index for ln in lines])]


def _timelines(report: Report, names: list[str], tips: list[str]) -> list[str]:
    """Each series' accelerator utilisation and node power over time, its steps shaded."""
    out = []
    for i, s in enumerate(report.series):
        timeline = report.spread.timelines.get(s.key)
        if timeline is None or not timeline.samples:
            continue
        t0 = min([timeline.samples[0][0]] + [start for _, start, _ in timeline.steps])
        spans = [(start - t0, end - t0, label) for label, start, end in timeline.steps]
        for column, title, unit_label in ((1, "Accelerator utilisation", "utilisation (%)"), (2, "Node power", "W")):
            points = [(sample[0] - t0, sample[column]) for sample in timeline.samples if math.isfinite(sample[column])]
            if points:
                out.append(charts.figure(line_chart(f"{title} over time — {names[i]}", [Line(i, points, tips[i])],
                                              "seconds since the run's start", unit_label, spans), names, [i],
                                   "Shaded: the run's steps (c = concurrency, or the offered rate)."))
    if not out:
        out.append('<p class="formula">No accelerator utilisation or power was sampled in these runs (simulated '
                   "targets and hosts without NVML or Neuron have none): no device charts.</p>")
    return out


def _cost_chart(report: Report, names: list[str], tips: list[str]) -> str:
    """The cost chart only over series with a price; a sentence naming each missing price and the fix."""
    index = {s.key: i for i, s in enumerate(report.series)}
    priced = [c for c in report.costs if c.price is not None]
    missing = [c for c in report.costs if c.price is None]
    sentence = ""
    if missing:
        sentence = ("No cost for " + "; ".join(f"{names[index[c.series.key]]}: {c.note or 'no price'}" for c in missing)
                    + ".")
    if not report.costs:
        return '<p class="formula nocost">Cost left out (--no-cost).</p>'
    if not priced:
        return f'<p class="formula nocost">{escape(sentence)}</p>'
    bars = [Bar(index[c.series.key], cost_figures(c)["usd_per_m_output_at_peak"], tips[index[c.series.key]])
            for c in priced]
    return charts.figure(bar_chart("$ per 1M output tokens at peak", bars, "USD"), names, [b.index for b in bars], sentence)


# A text cell longer than this is cut to one line (its whole text in the tooltip, and any warning in it listed
# under its table or among the steps flagged), so a flagged row is as tall as the others; the tables whose
# text is their content (the checks' reasons, the workloads) wrap instead.
LONG_CELL, WRAPPED = 48, ("checks", "workload")


def _cell(value: object, kind: str, name: str, wrap: bool) -> str:
    text = fmt(value, kind)
    if name == "checks" and "⚠" in text:
        return f'<td class="warn">{escape(text)}</td>'
    if kind != TEXT:
        return f'<td class="n">{escape(text)}</td>'
    if (len(text) > LONG_CELL and not wrap) or name == "flags":  # a mark stays on one line ('⚠ client-limited')
        return f'<td class="long" title="{escape(text)}">{escape(text)}</td>'
    return f"<td>{escape(text)}</td>"


def _table(table: Table) -> str:
    out = [f"<h2>{escape(table.title)}</h2>"]
    if not table.rows:
        return out[0] + f'<p class="formula">{escape(table.caption)}</p>'
    wrap = table.key in WRAPPED
    out.append(f'<div class="wide"><table id="table-{escape(table.key)}"><tr>'
               + "".join(f"<th>{escape(c.name + unit(c.kind))}</th>" for c in table.columns) + "</tr>")
    for row in table.rows:
        out.append("<tr>" + "".join(_cell(v, c.kind, c.name, wrap) for v, c in zip(row, table.columns)) + "</tr>")
    out.append("</table></div>")
    out.append(f'<p class="formula">Formula: {escape(table.caption)}</p>')
    found = table_lines(table)
    if found:
        out.append("<ul>" + "".join(f'<li class="warn">{escape(line)}</li>' for line in found) + "</ul>")
    return "\n".join(out)
