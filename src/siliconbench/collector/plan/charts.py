"""The plan as an HTML page: the recommendation, premises and warnings, two charts, and the tables.

- Fleet $/hour against target load, per priced candidate: a step at each load where one more node is needed
  (node k carries up to k × capacity ÷ (1 + headroom)); the planned load is shaded.
- $/1M output tokens (at the planned load) against the SLO headroom at the boundary (the smallest of the
  SLOs asked for), one mark per priced candidate: lower and further right is cheaper with more margin.
"""

from __future__ import annotations

from siliconbench.collector.plan.rank import Choice, PlanAnswer, nodes_for
from siliconbench.collector.plan.render import arithmetic, evidence, label, money, percent, premises, price_text, title
from siliconbench.collector.reports.escape import html as escape
from siliconbench.collector.reports.svg import Line, colour, line_chart


def fleet_steps(answer: PlanAnswer, c: Choice, up_to: float) -> list[tuple[float, float]]:
    """(load, fleet $/hour) corners of the candidate's step line from load 0 to `up_to`."""
    r = answer.request
    assert c.price is not None
    per_node = c.capacity.in_unit(r.load.unit) / (1 + r.headroom)
    most = nodes_for(up_to, r.headroom, c.capacity.in_unit(r.load.unit)) or 1
    points: list[tuple[float, float]] = []
    for k in range(1, most + 1):
        points += [((k - 1) * per_node, k * c.price.usd_per_hour), (min(k * per_node, up_to), k * c.price.usd_per_hour)]
    return points


def smallest_headroom(c: Choice) -> float | None:
    known = [h for h in c.headroom.values() if h is not None]
    return min(known, default=None)


def _legend(entries: list[tuple[int, str]]) -> str:
    return "<ul>" + "".join(f'<li><span style="color:{colour(i)}">■</span> {escape(name)}</li>'
                            for i, name in entries) + "</ul>"


def _charts(answer: PlanAnswer) -> list[str]:
    r = answer.request
    priced = [(i, c) for i, c in enumerate(answer.choices) if c.usd_per_hour is not None]
    if not priced:
        return ["<p>No priced candidate: no chart.</p>"]
    up_to = 2 * r.load.value
    legend = _legend([(i, label(c)) for i, c in priced])
    steps = line_chart("Fleet $/hour against target load",
                       [Line(i, fleet_steps(answer, c, up_to), label(c)) for i, c in priced],
                       f"target load ({r.load.unit})", "fleet $/hour",
                       spans=[(r.load.value * 0.995, r.load.value * 1.005, "planned load")])
    marks = [Line(i, [(100 * h, c.usd_per_million_at_load or 0.0)], f"{label(c)}: {percent(h)} headroom, "
                  f"{money(c.usd_per_million_at_load, 3)} per 1M", marks_only=True)
             for i, c in priced if (h := smallest_headroom(c)) is not None]
    cost = line_chart("$/1M output tokens against SLO headroom at the boundary", marks,
                      "smallest SLO headroom at the boundary (%)", "$ per 1M output tokens at the planned load")
    return [f"<figure>{steps}{legend}</figure>", f"<figure>{cost}{legend}</figure>"]


def render_html(answer: PlanAnswer) -> str:
    keys = list(answer.request.limits)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title(answer))}</title></head><body>", f"<h1>{escape(title(answer))}</h1>",
             f"<p><b>Recommendation: {escape(answer.recommendation())}</b></p>"]
    parts += [f"<p>{escape(line)}</p>" for line in premises(answer)]
    parts += [f'<p style="color:#b00"><b>Warning:</b> {escape(w)}</p>' for w in answer.warnings]
    parts += _charts(answer)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in (
            i, label(c), c.nodes, c.nodes_low or "–", f"{c.capacity.rps:,.3g} ({c.capacity.rps_low:,.3g})",
            money(c.usd_per_hour), money(c.usd_per_million_at_load, 3), money(c.usd_per_million_at_capacity, 3),
            *(percent(c.headroom[k]) for k in keys), price_text(c), evidence(c),
            "; ".join(c.notes + ((f"BORROWED from another workload: {'; '.join(c.borrowed)}",) if c.borrowed else ()))))
        + "</tr>" for i, c in enumerate(answer.choices, 1))
    parts.append("<table><tr><th>#</th><th>candidate</th><th>nodes</th><th>nodes at lower bound</th>"
                 "<th>req/s per node (low)</th><th>fleet $/h</th><th>$/1M output tok at load</th><th>at capacity</th>"
                 + "".join(f"<th>{escape(k)} headroom</th>" for k in keys)
                 + f"<th>price</th><th>evidence</th><th>note</th></tr>{rows}</table>")
    parts += ["<h2>Arithmetic</h2><ul>"] + [f"<li><b>{escape(label(c))}</b>: {escape(arithmetic(answer, c))}</li>"
                                           for c in answer.choices] + ["</ul>"]
    if answer.missing:
        parts.append("<h2>Missing: no stored search answers for these</h2><ul>")
        parts += [f"<li><b>{escape(m.instance_type)}</b> {escape(m.scenario)}: {escape('; '.join(m.reasons))}. "
                  f"Measure it: <code>{escape(m.command)}</code></li>" for m in answer.missing]
        parts.append("</ul>")
    if answer.unmet:
        parts.append("<h2>No load within the SLOs</h2><ul>")
        parts += [f"<li><b>{escape(u.instance_type)}</b>{' SIMULATED' if u.simulated else ''}: {escape(u.reason)} "
                  f"(search {escape(u.search_id)})</li>" for u in answer.unmet]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
