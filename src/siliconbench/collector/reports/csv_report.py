"""CSV: one row per series × sweep point (mode, concurrency, rate; collector/points.py) with every figure as a raw number (median of the repetitions
and its min/max), the server's own figures beside the client's (`server_requests`, `server_tokens_in`,
`server_tokens_out`, `server_ttft_mean_ms`, `server_itl_mean_ms`, `server_tpot_mean_ms`, `server_e2e_mean_ms`:
vLLM's /metrics over the step, median of the repetitions; docs/report-columns.md), each consistency check's
outcome (`check_littles_law`, ...: passed, warned, noted or could not apply, with why), the node's device figures, the cost at that point and its flags (client saturated,
partial steps, in words), then, per served model, its answer figures (`MODEL:ttfa_p50_ms`, ...;
reports/answer_tables.py), for sessions the step's session figures and each turn depth's
(`turn0:ttft_p50_ms`, ...; reports/session_tables.py), and a trace replay's figures (`trace_*`,
reports/trace_tables.py) — for spreadsheets and plots.
The fleet report: its scenario table, one row per scenario × sweep point, raw numbers, with what the
scenario's nodes ran and its cost."""

from __future__ import annotations

import csv
import io

from siliconbench.collector.check_outcomes import NAMES, column, outcomes
from siliconbench.collector.figures import UTIL_QUANTILES, Percentiles, quantile_name
from siliconbench.collector.prices import usd_per_million
from siliconbench.collector.reports.answer_tables import model_cells, model_columns
from siliconbench.collector.reports.cost import cost_figures
from siliconbench.collector.reports.escape import csv_cell
from siliconbench.collector.reports.findings import point_figures
from siliconbench.collector.reports.fleet import FleetReport
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.session_tables import session_cells, session_columns
from siliconbench.collector.server_views import COLUMNS as SERVER_COLUMNS
from siliconbench.collector.reports.trace_tables import trace_cells, trace_columns
from siliconbench.collector.levels import QUANTILES
from siliconbench.collector.workload import describe, plan_of

_SCALARS = ("repetitions", "requests", "errors", "ok_requests", "tokens_out", "tokens_in", "wall_s",
            "output_tps", "output_tps_min", "output_tps_max", "total_tps", "rps", "goodput_rps",
            "goodput_output_tps", "goodput_total_tps", "ttft_mean_ms", "itl_mean_ms", "itl_token_mean_ms",
            "tokens_per_chunk", "tpot_mean_ms", "e2e_mean_ms", "mean_in_flight", "sent_rps", "dispatch_mean_ms",
            "dispatch_p99_ms", "saturated_steps", "partial_steps", "prefix_cache_hit_rate",
            "full_concurrency_share", "steady_s", "steady_output_tps", *SERVER_COLUMNS)
_ARRAYS = ("ttft_ms", "itl_ms", "itl_token_ms", "tpot_ms", "e2e_ms")
_NODE = ("util_mean_pct", "mem_peak_bytes", "power_mean_w", "energy_j", "j_per_output_token", "energy_method")


def render_fleet(report: FleetReport) -> str:
    """The scenario rows, each with what its nodes ran (model, target, simulated, workload) and its price and
    $/1M output tokens at its peak (its first priced node's)."""
    table = report.table("scenarios")
    detail = report.detail
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "state", *(c.name for c in table.columns), "model", "target_url", "simulated",
                     "workload", "usd_per_hour", "usd_per_m_output_at_peak"])
    for row in table.rows:
        nodes = [s for s in detail.series if s.scenario == row[0]]
        s = nodes[0] if nodes else None
        priced = [cost_figures(c) for c in detail.costs if c.series in nodes and c.price is not None]
        writer.writerow(_cells([report.run_id, report.life.state, *row, s.model if s else "", s.target_url if s else "",
                                int(s.simulated) if s else "", describe(plan_of(s.config_json)) if s else "",
                                priced[0]["usd_per_hour"] if priced else None,
                                priced[0]["usd_per_m_output_at_peak"] if priced else None]))
    return out.getvalue()


def render(report: Report) -> str:
    prices = {c.series.label: c.price for c in report.costs}
    header = (["scenario", "run_id", "agent_id", "instance_type", "simulated", "load", "mode", "concurrency",
               "rate_rps", *_SCALARS]
              + [f"{a.removesuffix('_ms')}_{quantile_name(q)}_ms" for a in _ARRAYS for q in QUANTILES]
              + [f"util_{quantile_name(q)}_pct" for q in UTIL_QUANTILES]
              + [*_NODE, "usd_per_hour", "price_kind", "price_region", "price_as_of",
                 "usd_per_m_output", "usd_per_m_total", "usd_per_m_output_goodput", "publishable", "flags", "workload", "workload_vs_baseline",
                 "run_state", "steps_kept", *(column(check) for check in NAMES), *model_columns(report), *session_columns(report),
                 *trace_columns(report)])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for s in report.series:
        price = prices.get(s.label)
        hourly = price.usd_per_hour if price else None
        for p in report.figures.points_of(s):
            point = p.point
            node = report.figures.node_of(s, point)
            columns = p.as_row()
            m = p.median
            flags = [f"{f.check}: {f.message}" for f in report.flags if f.subject == s.label and f.point == point.label()]
            row = [s.label, s.run_id, s.agent_id, s.instance_type, int(s.simulated), point.label(), point.mode,
                   point.concurrency, point.rate_rps]
            row += [columns[k] for k in _SCALARS]
            row += [_at(getattr(m, a), q) for a in _ARRAYS for q in QUANTILES]
            row += [_at(node.util_pct if node else None, q) for q in UTIL_QUANTILES]
            row += [getattr(node, k) if node else None for k in _NODE]
            row += [hourly, price.kind if price else "", price.region if price else "", price.as_of if price else "",
                    usd_per_million(hourly, m.output_tps) if hourly else None,
                    usd_per_million(hourly, m.total_tps) if hourly else None,
                    usd_per_million(hourly, m.goodput_output_tps) if hourly else None,
                    int(report.publishable), " | ".join(flags), describe(plan_of(s.config_json)),
                    ", ".join(report.mixed.get(s.label, [])) or "same", report.runs[s.run_id].describe()]
            steps = report.figures.steps_at(s, p)
            row.append(f"{sum(1 for st in steps if st.kept)}/{len(steps)}")  # read kept / the point's steps
            found = {o.check: o.text() for o in outcomes(point_figures(s.label, p, steps))}
            row += [found.get(check, "") for check in NAMES]
            row += model_cells(report, s, p) + session_cells(report, s, p)
            row += trace_cells(report, s.run_id, s.agent_id, list(p.steps))
            writer.writerow(_cells(row))
    return out.getvalue()


def _at(percentiles: Percentiles | None, q: float) -> float | None:
    return None if percentiles is None else percentiles.at(q)


def _cells(row: list) -> list:
    """The row as CSV cells: missing numbers empty, text that would start a formula neutralised."""
    return ["" if v is None or v != v else csv_cell(v) for v in row]
