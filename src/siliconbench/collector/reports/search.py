"""`report --search ID`: a search's answer, method and evidence, per node, in every format.

Each probe is shown as judged for good (an extended probe's last step); its steps are the run's steps.
The HTML plots, per SLO, each probe's bound and point estimate against the probed value, with the SLO
as a flat line, the failed probes crossed and the boundary shaded."""

from __future__ import annotations

import csv
import io
import math

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.reports.escape import csv_cell, json_text
from siliconbench.collector.reports.escape import html as escape
from siliconbench.collector.reports.escape import markdown as md
from siliconbench.collector.reports.svg import Line, colour, line_chart
from siliconbench.collector.searches import NodeSearch, ProbeRow, SearchAnswer
from siliconbench.core.search import FROM_STORE

FORMATS = ("markdown", "csv", "json", "html")


def render_search(search_id: str, nodes: list[NodeSearch], fmt: str) -> str:
    """The search in `fmt`; InvalidOption naming the formats otherwise."""
    render = {"markdown": _markdown, "csv": _csv, "json": _json, "html": _html}.get(fmt.lower())
    if render is None:
        raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    return render(search_id, nodes)


def _show(key: str, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2%}" if key == "error_rate" else f"{value:,.1f} ms"


def _value(control: str, value: float) -> str:
    return f"{value:g}" if control == "concurrency" else f"{value:.3g} req/s"


def answer_lines(node: NodeSearch) -> list[str]:
    """The answer in words, as the agent printed it."""
    a = node.answer
    if a is None:
        return ["the search did not finish: no answer stored (the probes below are what it measured)"]
    to, undecided = node.undecided()
    lines = [] if to is None else [
        f"largest {a.control} within SLO: undecided "
        + (f"between {_value(a.control, a.boundary)} and " if a.found else "up to ") + _value(a.control, to)
        + f": at {', '.join(_value(a.control, v) for v in undecided)} the data could not decide, every extension taken."]
    if not a.found:
        if lines:
            return lines
        first = node.probes[0] if node.probes else None
        why = f": at {_value(a.control, first.value)} {first.reason}" if first is not None else ""
        return [f"no load within SLO{why}"]
    lines.append(f"{'Largest pass:' if lines else f'largest {a.control} within SLO:'} "
                 f"{_value(a.control, a.boundary)} ({'verified' if a.verified else 'NOT verified'}).")
    if a.binding:
        lines.append(f"Binding: {a.binding} (bound {_show(a.binding, a.bounds.get(a.binding))}, headroom "
                     f"{_percent(a.headroom.get(a.binding))}).")
    lines += [f"{key} bound {_show(key, a.bounds[key])} ({_percent(h)} headroom)."
              for key, h in a.headroom.items() if key != a.binding]
    lines.append(f"At {_value(a.control, a.boundary)}: {a.output_tps:,.0f} output tok/s, {a.rps:.1f} req/s.")
    return lines


def readings_line(node: NodeSearch) -> str:
    """Where the probes' readings came from: the collector's store, or the agent's own records (and why)."""
    own = [r for r in _judged(node) if r.readings_from != FROM_STORE]
    if not node.probes or not own:
        return "Readings: every probe's read from the collector's store." if node.probes else ""
    said = sorted({r.readings_from.removeprefix("agent: ") or "not said (an agent older than the store's readings)"
                   for r in own})
    return (f"Readings: probe(s) {', '.join(str(r.probe + 1) for r in own)} judged on the agent's own records: "
            f"{'; '.join(said)}.")


def _percent(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0%}"


def _method(a: SearchAnswer | None) -> str:
    return "" if a is None else f"SLOs {a.slo}. Method: {a.method}; tolerance {a.tolerance:.0%}."


def _judged(node: NodeSearch) -> list[ProbeRow]:
    """Each probe as judged for good: its last step."""
    last: dict[int, ProbeRow] = {}
    for row in node.probes:
        last[row.probe] = row
    return sorted(last.values(), key=lambda r: r.step)


def _cells(row: ProbeRow) -> list[str]:
    return [f"{_show(k, p)} / {_show(k, b)} (≤ {_show(k, limit)})"
            for k, limit, p, b in zip(row.slo_keys, row.limits, row.points, row.bounds)]


def _markdown(search_id: str, nodes: list[NodeSearch]) -> str:
    out = [f"# siliconbench search {md(search_id)}", ""]
    for node in nodes:
        out += [f"## node {md(node.agent_id)}", ""] + [md(line) for line in answer_lines(node)]
        out += ["", md(_method(node.answer)), "", md(readings_line(node)), ""]
        keys = node.probes[0].slo_keys if node.probes else ()
        out.append("| probe | steps | phase | value | requests | " + " | ".join(
            f"{md(k)} point / bound" for k in keys) + " | verdict | reason |")
        out.append("|" + "---|" * (7 + len(keys)))
        for row in _judged(node):
            steps = ",".join(str(r.step) for r in node.probes if r.probe == row.probe)
            out.append(f"| {row.probe + 1} | {steps} | {row.phase} | {row.value:g} | {row.requests} | "
                       + " | ".join(md(c) for c in _cells(row)) + f" | {row.verdict} | {md(row.reason)} |")
        out.append("")
    return "\n".join(out) + "\n"


_CSV_COLUMNS = ["search_id", "agent_id", "step", "probe", "phase", "value", "requests", "verdict", "reason", "slo",
                "limit", "point", "bound", "control", "boundary", "verified", "binding", "readings_from"]


def _csv(search_id: str, nodes: list[NodeSearch]) -> str:
    """One row per step and SLO, the node's answer repeated on each."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for node in nodes:
        a = node.answer
        answer = [a.control, a.boundary if a.found else "", a.verified, a.binding] if a else ["", "", "", ""]
        for row in node.probes:
            for key, limit, point, bound in zip(row.slo_keys, row.limits, row.points, row.bounds):
                writer.writerow([csv_cell(v) for v in [search_id, node.agent_id, row.step, row.probe, row.phase,
                                                       row.value, row.requests, row.verdict, row.reason, key, limit,
                                                       "" if point is None else point,
                                                       "" if bound is None else bound, *answer,
                                                       row.readings_from]])
    return text.getvalue()


def _json(search_id: str, nodes: list[NodeSearch]) -> str:
    def answer(n: NodeSearch) -> dict | None:
        a = n.answer
        if a is None:
            return None
        to, undecided = n.undecided()
        return {"control": a.control, "slo": a.slo, "method": a.method, "tolerance": a.tolerance,
                "boundary": a.boundary if a.found else None, "verified": a.verified, "binding": a.binding or None,
                "undecided_to": to, "undecided": undecided,
                "bounds": a.bounds, "headroom": a.headroom, "output_tps": a.output_tps, "rps": a.rps}

    return json_text({"search_id": search_id, "nodes": [
        {"agent_id": n.agent_id, "answer": answer(n),
         "probes": [{"step": r.step, "probe": r.probe, "phase": r.phase, "value": r.value, "requests": r.requests,
                     "verdict": r.verdict, "reason": r.reason, "readings_from": r.readings_from,
                     "bounds": {k: {"limit": limit, "point": p, "bound": b}
                                for k, limit, p, b in zip(r.slo_keys, r.limits, r.points, r.bounds)}}
                    for r in n.probes]} for n in nodes]}) + "\n"


def _chart(node: NodeSearch, index: int) -> str:
    """One SLO: bound and point estimate per probed value, the SLO line, failed probes crossed, the
    boundary shaded."""
    judged = _judged(node)
    key, limit = judged[0].slo_keys[index], judged[0].limits[index]
    by_value = {r.value: r for r in judged}  # the last judgement of each value (its verification)
    values = sorted(by_value)

    def series(pick: int) -> list[tuple[float, float]]:
        got = [(v, (by_value[v].bounds if pick else by_value[v].points)[index]) for v in values]
        return [(v, y) for v, y in got if y is not None]

    failed = [(r.value, _or(r.bounds[index], limit)) for r in judged if r.verdict != "pass"]
    lines = [Line(0, series(1), f"{key} 95 % upper bound"), Line(1, series(0), f"{key} point estimate"),
             Line(3, [(0.0, limit), (max(values), limit)], f"SLO {key} ≤ {limit:g}"),
             Line(2, failed, "failed probe", marks_only=True)]
    a = node.answer
    spans = []
    if a is not None and a.found:
        width = max(values) / 100
        spans.append((a.boundary - width, a.boundary + width, f"boundary {a.boundary:g}"))
    unit = "share" if key == "error_rate" else "ms"
    return line_chart(f"{key} vs {a.control if a else 'load'}", lines, a.control if a else "load", unit, spans)


def _or(value: float | None, instead: float) -> float:
    return instead if value is None else value


def _html(search_id: str, nodes: list[NodeSearch]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>siliconbench search {escape(search_id)}</title></head><body>",
             f"<h1>siliconbench search {escape(search_id)}</h1>"]
    legend = "".join(f'<li><span style="color:{colour(i)}">■</span> {escape(name)}</li>' for i, name in
                     ((0, "95 % upper bound"), (1, "point estimate"), (3, "SLO"), (2, "failed probe (×)")))
    for node in nodes:
        parts.append(f"<h2>node {escape(node.agent_id)}</h2>")
        parts += [f"<p><b>{escape(line)}</b></p>" for line in answer_lines(node)]
        parts.append(f"<p>{escape(_method(node.answer))}</p><p>{escape(readings_line(node))}</p>")
        if node.probes:
            parts += [f"<figure>{_chart(node, i)}<ul>{legend}</ul></figure>"
                      for i in range(len(node.probes[0].slo_keys))]
        rows = "".join(f"<tr><td>{r.probe + 1}</td><td>{r.phase}</td><td>{r.value:g}</td><td>{r.requests}</td>"
                       + "".join(f"<td>{escape(c)}</td>" for c in _cells(r))
                       + f"<td>{escape(r.verdict)}</td><td>{escape(r.reason)}</td></tr>" for r in _judged(node))
        keys = node.probes[0].slo_keys if node.probes else ()
        parts.append("<table><tr><th>probe</th><th>phase</th><th>value</th><th>requests</th>"
                     + "".join(f"<th>{escape(k)} point / bound</th>" for k in keys)
                     + f"<th>verdict</th><th>reason</th></tr>{rows}</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
