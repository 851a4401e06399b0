"""The tables of a trace replay (collector/trace_figures.py), shown only when a series replayed a trace: per
trace step, how it was replayed and what came of it (offered rate, dispatch lag, SLO attainment, expected
against achieved prefix reuse, and what the replay did with the trace's prefixes, in words); then its
arrival curve, per time window, offered against achieved, with the window's dispatch lag and SLO attainment.
CSV has one row per sweep point: `trace_columns` and `trace_cells` give it the same figures, the windows
compacted into one cell."""

from __future__ import annotations

from dataclasses import dataclass

from siliconbench.collector.reports.picks import pct_of
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import INT, MS, NUM, PCT, RPS, TEXT, Declared, Table, cell
from siliconbench.collector.trace_figures import TraceStep, TraceWindow


def _scales(t: TraceStep) -> str:
    window = f", window {t.window} s" if t.window else ""
    return f"time x{t.time_scale:g}, rate x{t.rate_scale:g}{window}"


REPLAYS = Declared("trace_replay", "Trace replay: offered load, dispatch lag, SLO attainment, prefix reuse", (
    cell("Scenario", TEXT, lambda t: t.series.label),
    cell("step", INT, lambda t: t.step),
    cell("format", TEXT, lambda t: t.trace_format),
    cell("replayed", TEXT, _scales),
    cell("requests", INT, lambda t: t.requests),
    cell("span s", NUM, lambda t: t.span_s),
    cell("offered", RPS, lambda t: t.offered_rps),
    cell("dispatch lag p50", MS, lambda t: t.lag_p50_ms),
    cell("dispatch lag p99", MS, lambda t: t.lag_p99_ms),
    cell("SLO attainment", PCT, lambda t: pct_of(t.attainment)),
    cell("expected reuse (tokens)", INT, lambda t: t.expected_cached_tokens if t.trace_block_size else None),
    cell("server prefix-cache hits", INT, lambda t: t.server_hits),
    cell("prefixes", TEXT, lambda t: t.prefix_note()),
))


@dataclass(frozen=True, slots=True)
class StepWindow:
    trace: TraceStep
    window: TraceWindow


WINDOWS = Declared("trace_windows", "Trace replay: offered vs achieved arrivals per time window", (
    cell("Scenario", TEXT, lambda w: w.trace.series.label),
    cell("step", INT, lambda w: w.trace.step),
    cell("from s", NUM, lambda w: w.window.start_s),
    cell("to s", NUM, lambda w: w.window.end_s),
    cell("offered", INT, lambda w: w.window.offered),
    cell("achieved", INT, lambda w: w.window.achieved),
    cell("dispatch lag p50", MS, lambda w: w.window.lag_p50_ms),
    cell("dispatch lag p99", MS, lambda w: w.window.lag_p99_ms),
    cell("SLO attainment", PCT, lambda w: pct_of(w.window.attainment)),
))


def _caption(report: Report) -> str:
    return (f"Per trace step. offered = requests ÷ the span between the first and the last scheduled arrival "
            f"(the trace's offsets, scaled); dispatch lag = send − scheduled time, per request; SLO attainment = "
            f"requests that met every SLO ({report.slo.describe()}) ÷ requests. expected reuse = the prompt "
            f"tokens each request should find in the server's prefix cache (its leading hash-id blocks an earlier "
            f"request sent, less the last token, in whole server blocks), summed; server prefix-cache hits = "
            f"vLLM's vllm:prefix_cache_hits_total over the step (includes nothing the trace did not send).")


def _windows_caption(report: Report) -> str:
    return ("Each step's span cut into windows of a round width. offered = requests scheduled in the window; "
            "achieved = requests sent in it (scheduled time + dispatch lag); dispatch lag and SLO attainment "
            f"({report.slo.describe()}) over the requests scheduled in the window.")


def trace_tables(report: Report) -> list[Table]:
    """The trace replay's two tables; none when no series replayed a trace."""
    if not report.traces:
        return []
    windows = (StepWindow(t, w) for t in report.traces for w in t.windows)
    return [REPLAYS.build(report.traces, _caption(report)), WINDOWS.build(windows, _windows_caption(report))]


# ---- CSV: the same figures on each sweep point's row (a trace step is the point "trace R req/s") ----------

TRACE_COLUMNS = ("trace_format", "trace_offered_rps", "trace_dispatch_lag_p50_ms", "trace_dispatch_lag_p99_ms",
                 "trace_slo_attainment", "trace_expected_cached_tokens", "trace_server_prefix_hits", "trace_prefixes",
                 "trace_windows")


def trace_columns(report: Report) -> list[str]:
    return list(TRACE_COLUMNS) if report.traces else []


def _compact(windows: list[TraceWindow]) -> str:
    """FROM_S:OFFERED:ACHIEVED:LAG_P99_MS:ATTAINMENT per window, separated by spaces."""
    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.4g}"
    return " ".join(f"{w.start_s:g}:{w.offered}:{w.achieved}:{num(w.lag_p99_ms)}:{num(w.attainment)}"
                    for w in windows)


def trace_cells(report: Report, run_id: str, agent_id: str, steps: list[int]) -> list:
    """`trace_columns`' values at one sweep point: its first trace step's (repetitions are separate steps)."""
    if not report.traces:
        return []
    mine = [t for t in report.traces if t.series.key == (run_id, agent_id) and t.step in steps]
    if not mine:
        return [None] * len(TRACE_COLUMNS)
    t = mine[0]
    return [t.trace_format, t.offered_rps, t.lag_p50_ms, t.lag_p99_ms, t.attainment,
            t.expected_cached_tokens if t.trace_block_size else None, t.server_hits, t.prefix_note(),
            _compact(t.windows)]
