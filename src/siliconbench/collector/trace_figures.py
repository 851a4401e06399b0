"""A trace replay's figures, per trace step (StepEvent mode "trace") of the report's series: how the offered
arrivals (each request's scheduled offset) were achieved (its offset plus its dispatch lag), per time window
and over the step, the dispatch lag's p50 and p99, the share of requests that met every SLO, and the prefix
reuse the client expected beside the server's own prefix-cache hits.

Windows: each step's span cut into at most MAX_WINDOWS windows of a round width (1, 2 or 5 x 10^k s); a
request belongs to the window of its scheduled arrival (offered, lag, SLO attainment) and, for `achieved`,
to the window of its actual send.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from siliconbench.collector.formulas import REQUEST_FIGURES, REQUEST_GOOD
from siliconbench.collector.rollups import Series, Slo
from siliconbench.collector.store import Store

MAX_WINDOWS = 20

_STEPS_SQL = """
SELECT run_id, agent_id, step, any(trace_format), any(trace_block_size), any(block_size), any(trace_time_scale),
    any(trace_rate_scale), any(trace_window)
FROM {db}.steps WHERE has({runs:Array(String)}, run_id) AND mode = 'trace'
GROUP BY run_id, agent_id, step ORDER BY run_id, agent_id, step
"""
_TOTALS_SQL = f"""
WITH {REQUEST_FIGURES}, {REQUEST_GOOD} AS good
SELECT run_id, agent_id, step, count(), max(trace_offset_ns) / 1e9,
    quantileExact(0.5)(dispatch_delay_ns) / 1e6, quantileExact(0.99)(dispatch_delay_ns) / 1e6,
    countIf(good), sum(expected_cached_tokens)
FROM {{db}}.requests WHERE has({{runs:Array(String)}}, run_id) AND trace_line > 0
GROUP BY run_id, agent_id, step
"""
_HITS_SQL = """
SELECT run_id, agent_id, step, sum(end_value - start_value)
FROM {db}.server_metrics
WHERE has({runs:Array(String)}, run_id) AND name = 'vllm:prefix_cache_hits_total'
GROUP BY run_id, agent_id, step
"""
_WINDOWS_SQL = f"""
WITH {REQUEST_FIGURES}, {REQUEST_GOOD} AS good
SELECT intDiv(trace_offset_ns, {{width_ns:Int64}}) AS w, count(),
    quantileExact(0.5)(dispatch_delay_ns) / 1e6, quantileExact(0.99)(dispatch_delay_ns) / 1e6, countIf(good)
FROM {{db}}.requests
WHERE run_id = {{run:String}} AND agent_id = {{agent:String}} AND step = {{step:UInt32}} AND trace_line > 0
GROUP BY w ORDER BY w
"""
_ACHIEVED_SQL = """
SELECT intDiv(greatest(trace_offset_ns + dispatch_delay_ns, 0), {width_ns:Int64}) AS w, count()
FROM {db}.requests
WHERE run_id = {run:String} AND agent_id = {agent:String} AND step = {step:UInt32} AND trace_line > 0
GROUP BY w
"""


@dataclass(frozen=True, slots=True)
class TraceWindow:
    start_s: float
    end_s: float
    offered: int            # requests scheduled in the window
    achieved: int           # requests sent in the window
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    good: int               # of the offered, those that met every SLO

    @property
    def attainment(self) -> float | None:
        return self.good / self.offered if self.offered else None


@dataclass(slots=True)
class TraceStep:
    """One trace step of a series: how the trace was replayed, and what came of it."""

    series: Series
    step: int
    trace_format: str
    trace_block_size: int   # 0: the trace has no prefix information
    block_size: int         # the server's, 0: unknown
    time_scale: float
    rate_scale: float
    window: str
    requests: int = 0
    span_s: float = 0.0
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    good: int = 0
    expected_cached_tokens: int = 0
    server_hits: float | None = None  # vLLM's prefix-cache hits over the step; None: the server does not say
    windows: list[TraceWindow] = field(default_factory=list)

    @property
    def offered_rps(self) -> float | None:
        return self.requests / self.span_s if self.span_s > 0 else None

    @property
    def attainment(self) -> float | None:
        return self.good / self.requests if self.requests else None

    def prefix_note(self) -> str:
        """What the replay did with the trace's prefixes, in words."""
        if not self.trace_block_size:
            return f"no prefix information in a {self.trace_format} trace: replayed without shared prefixes"
        server = f"server block {self.block_size}" if self.block_size else "server block size unknown"
        return f"hash ids as shared blocks of {self.trace_block_size} tokens ({server})"


def window_width_s(span_s: float) -> float:
    """The round width (1, 2 or 5 x 10^k s) that cuts `span_s` into at most MAX_WINDOWS windows."""
    least = max(span_s, 1e-3) / MAX_WINDOWS
    power = 10 ** math.floor(math.log10(least))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= least)


def load_trace_steps(store: Store, series: list[Series], slo: Slo) -> list[TraceStep]:
    """The trace steps of `series`, with their totals and windows; none when no series replayed a trace."""
    by_key = {s.key: s for s in series}
    runs = {"runs": sorted({s.run_id for s in series})}
    steps = [TraceStep(by_key[(r[0], r[1])], *r[2:]) for r in store.query(_STEPS_SQL, runs).result_rows
             if (r[0], r[1]) in by_key]
    if not steps:
        return []
    params = {**runs, **slo.params()}
    totals = {(r[0], r[1], r[2]): r[3:] for r in store.query(_TOTALS_SQL, params).result_rows}
    hits = {(r[0], r[1], r[2]): r[3] for r in store.query(_HITS_SQL, runs).result_rows}
    for step in steps:
        key = (*step.series.key, step.step)
        if key in totals:
            (step.requests, step.span_s, p50, p99, step.good, step.expected_cached_tokens) = totals[key]
            step.lag_p50_ms, step.lag_p99_ms = (p50, p99) if step.requests else (None, None)
        step.server_hits = hits.get(key)
        step.windows = _windows(store, step, slo) if step.requests else []
    return steps


def _windows(store: Store, step: TraceStep, slo: Slo) -> list[TraceWindow]:
    width_s = window_width_s(step.span_s)
    params = {"run": step.series.run_id, "agent": step.series.agent_id, "step": step.step,
              "width_ns": round(width_s * 1e9), **slo.params()}
    achieved = dict(store.query(_ACHIEVED_SQL, params).result_rows)
    offered = {r[0]: r[1:] for r in store.query(_WINDOWS_SQL, params).result_rows}
    last = max([*offered, *achieved])
    windows = []
    for w in range(last + 1):
        count, p50, p99, good = offered.get(w, (0, None, None, 0))
        windows.append(TraceWindow(w * width_s, (w + 1) * width_s, count, achieved.get(w, 0),
                                   p50 if count else None, p99 if count else None, good))
    return windows
