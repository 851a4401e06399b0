"""The plan in Markdown, CSV or JSON (HTML: charts.py; the choice of format: output.py). Every format carries the recommendation, each
choice's arithmetic and evidence, the price's date and source, the missing candidates with the search that
would measure them, and the warnings (SIMULATED evidence, capacity borrowed from another workload)."""

from __future__ import annotations

import csv
import io
from typing import Any

from siliconbench.collector.plan.rank import Choice, PlanAnswer
from siliconbench.collector.reports.escape import csv_cell, json_text
from siliconbench.collector.reports.escape import markdown as md

def money(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"${value:,.{digits}f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def label(c: Choice) -> str:
    """'g6e.48xlarge (scenario C, m) SIMULATED'."""
    inner = ", ".join(filter(None, (f"scenario {c.scenario}" if c.scenario else "", c.model)))
    return c.instance_type + (f" ({inner})" if inner else "") + (" SIMULATED" if c.simulated else "")


def title(answer: PlanAnswer) -> str:
    r = answer.request
    return f"siliconbench plan: {r.load.show()} within {', '.join(f'{k}<={v:g}' for k, v in r.limits.items())}"


def premises(answer: PlanAnswer) -> list[str]:
    """The load, workload, headroom and prices the plan stands on, one line each."""
    r = answer.request
    return [f"Load: {r.load.show()} ({r.load.source}) = {r.load_tps:,.0f} output tok/s; planned with "
            f"{r.headroom:.0%} headroom: {r.load.value * (1 + r.headroom):,.4g} {r.load.unit}.",
            f"Workload: {r.workload.describe()}.",
            f"Prices: {r.prices.kind} in {r.prices.region}, from {r.prices.source}."]


def arithmetic(answer: PlanAnswer, c: Choice) -> str:
    r = answer.request
    unit = r.load.unit
    cap, low = c.capacity.in_unit(unit), c.capacity.in_unit(unit, low=True)
    text = (f"nodes = ceil({r.load.value:,.4g} × (1 + {r.headroom:g}) / {cap:,.4g} {unit}) = {c.nodes}; "
            f"at the lower bound {low:,.4g} {unit}: {c.nodes_low if c.nodes_low is not None else 'unbounded'}")
    if c.price is not None and c.usd_per_hour is not None:
        text += (f"; fleet = {c.nodes} × ${c.price.usd_per_hour:,.4g}/h = {money(c.usd_per_hour)}/h; "
                 f"$/1M output tokens = {money(c.usd_per_hour)} ÷ ({r.load_tps:,.0f} tok/s × 3600) × 10⁶ = "
                 f"{money(c.usd_per_million_at_load, 3)} at the planned load, "
                 f"{money(c.usd_per_million_at_capacity, 3)} at full capacity ({c.nodes * c.capacity.tps:,.0f} tok/s)")
    return text + f". Capacity: {c.capacity.how}."


def evidence(c: Choice) -> str:
    s = c.evidence
    return (f"search {s.search_id} (run {s.run_id}, {s.control}, SLO {s.slo}, nodes "
            f"{', '.join(n.agent_id for n in s.nodes)}, {s.started:%Y-%m-%d %H:%M} UTC"
            + (", SIMULATED" if s.simulated else "") + ")")


def price_text(c: Choice) -> str:
    p = c.price
    return "no price" if p is None else f"${p.usd_per_hour:,.4g}/h as of {p.as_of} ({p.source})"


def render_markdown(answer: PlanAnswer) -> str:
    out = [f"# {md(title(answer))}", "", f"**Recommendation: {md(answer.recommendation())}**", ""]
    out += [md(line) + "  " for line in premises(answer)] + [""]
    out += [f"> **Warning:** {md(w)}" for w in answer.warnings] + ([""] if answer.warnings else [])
    keys = list(answer.request.limits)
    if answer.choices:
        out += ["| # | candidate | nodes | nodes at lower bound | req/s per node (low) | output tok/s per node (low) "
                "| fleet $/h | $/1M output tok at load | at capacity | " + " | ".join(f"{md(k)} headroom" for k in keys)
                + " | price | evidence | note |",
                "|" + "---|" * (12 + len(keys))]
        for i, c in enumerate(answer.choices, 1):
            cap = c.capacity
            cells = [str(i), md(label(c)), str(c.nodes), str(c.nodes_low or "–"), f"{cap.rps:,.3g} ({cap.rps_low:,.3g})",
                     f"{cap.tps:,.0f} ({cap.tps_low:,.0f})", money(c.usd_per_hour), money(c.usd_per_million_at_load, 3),
                     money(c.usd_per_million_at_capacity, 3), *(percent(c.headroom[k]) for k in keys), md(price_text(c)),
                     md(c.evidence.search_id + (" SIMULATED" if c.simulated else "")),
                     md("; ".join(c.notes + ((f"BORROWED from another workload: {'; '.join(c.borrowed)}",)
                                             if c.borrowed else ())))]
            out.append("| " + " | ".join(cells) + " |")
        out += ["", "## Arithmetic and evidence", ""]
        out += [f"- **{md(label(c))}**: {md(arithmetic(answer, c))} Evidence: {md(evidence(c))}." for c in answer.choices]
    if answer.missing:
        out += ["", "## Missing: no stored search answers for these", ""]
        for m in answer.missing:
            name = m.instance_type + (f" (scenario {m.scenario})" if m.scenario else "") + (f" {m.model}" if m.model else "")
            out += [f"- **{md(name)}**: {md('; '.join(m.reasons))}. Measure it: `{m.command}`"]
    if answer.unmet:
        out += ["", "## No load within the SLOs", ""]
        out += [f"- **{md(u.instance_type)}**{md(' SIMULATED' if u.simulated else '')}: {md(u.reason)} "
                f"(search {md(u.search_id)})" for u in answer.unmet]
    return "\n".join(out) + "\n"


def choice_json(answer: PlanAnswer, c: Choice) -> dict[str, Any]:
    s, cap, p = c.evidence, c.capacity, c.price
    return {
        "instance_type": c.instance_type, "scenario": c.scenario, "model": c.model, "simulated": c.simulated,
        "nodes": c.nodes, "nodes_at_lower_bound": c.nodes_low, "usd_per_hour": c.usd_per_hour,
        "usd_per_million_output_tokens": c.usd_per_million_at_load,
        "usd_per_million_output_tokens_at_capacity": c.usd_per_million_at_capacity,
        "capacity_rps": cap.rps, "capacity_rps_lower_bound": cap.rps_low, "capacity_output_tps": cap.tps,
        "capacity_output_tps_lower_bound": cap.tps_low, "capacity_method": cap.how, "arithmetic": arithmetic(answer, c),
        "slo_headroom": c.headroom, "search_id": s.search_id,
        "price": None if p is None else {"usd_per_hour": p.usd_per_hour, "region": p.region, "kind": p.kind,
                                         "as_of": p.as_of, "source": p.source, "confidence": p.confidence},
        "evidence": {"search_id": s.search_id, "run_id": s.run_id, "control": s.control, "slo": s.slo,
                     "nodes": [n.agent_id for n in s.nodes], "started": s.started.isoformat(),
                     "verified": all(n.verified for n in s.nodes), "boundary_requests": cap.requests},
        "borrowed_from_other_workload": list(c.borrowed), "notes": list(c.notes),
    }


def render_json(answer: PlanAnswer) -> str:
    r = answer.request
    return json_text({
        "recommendation": answer.recommendation(),
        "load": {"value": r.load.value, "unit": r.load.unit, "source": r.load.source, "output_tps": r.load_tps},
        "workload": r.workload.describe(), "slo": r.limits, "headroom": r.headroom,
        "prices": {"region": r.prices.region, "kind": r.prices.kind, "source": r.prices.source},
        "choices": [choice_json(answer, c) for c in answer.choices],
        "missing": [{"instance_type": m.instance_type, "scenario": m.scenario, "model": m.model,
                     "reasons": list(m.reasons), "command": m.command} for m in answer.missing],
        "unmet": [{"instance_type": u.instance_type, "scenario": u.scenario, "model": u.model,
                   "search_id": u.search_id, "simulated": u.simulated, "reason": u.reason} for u in answer.unmet],
        "warnings": list(answer.warnings),
    }) + "\n"


CSV_COLUMNS = ("rank", "status", "instance_type", "scenario", "model", "simulated", "nodes", "nodes_at_lower_bound",
               "capacity_rps", "capacity_rps_lower_bound", "capacity_output_tps", "usd_per_hour",
               "usd_per_million_output_tokens", "usd_per_million_output_tokens_at_capacity", "price_usd_per_hour",
               "price_as_of", "price_source", "search_id", "warning", "note")


def render_csv(answer: PlanAnswer) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for i, c in enumerate(answer.choices, 1):
        p = c.price
        warning = "; ".join(([f"BORROWED from another workload: {'; '.join(c.borrowed)}"] if c.borrowed else [])
                            + (["SIMULATED evidence"] if c.simulated else []))
        writer.writerow([csv_cell(v) for v in (
            i, "choice", c.instance_type, c.scenario, c.model, c.simulated, c.nodes, c.nodes_low, c.capacity.rps,
            c.capacity.rps_low, c.capacity.tps, c.usd_per_hour, c.usd_per_million_at_load,
            c.usd_per_million_at_capacity, p.usd_per_hour if p else "", p.as_of if p else "", p.source if p else "",
            c.evidence.search_id, warning, "; ".join(c.notes))])
    for m in answer.missing:
        writer.writerow([csv_cell(v) for v in ("", "missing", m.instance_type, m.scenario, m.model, "", *[""] * 12, "",
                                               "; ".join(m.reasons) + f"; measure it: {m.command}")])
    for u in answer.unmet:
        writer.writerow([csv_cell(v) for v in ("", "no load within SLO", u.instance_type, u.scenario, u.model,
                                               u.simulated, *[""] * 11, u.search_id,
                                               "SIMULATED evidence" if u.simulated else "", u.reason)])
    return out.getvalue()
