"""What the report says beside its figures: the consistency checks per sweep point (collector/checks.py),
prefix-cache hits on prompts meant to be unique, and the steps the agent flagged (client saturated) or
that were cut short."""

from __future__ import annotations

from siliconbench.collector import checks
from siliconbench.collector.checks import Finding, PointFigures
from siliconbench.collector.figures import Figures, PointRow, StepRow
from siliconbench.collector.reports.picks import load, num, q
from siliconbench.collector.rollups import Series
from siliconbench.collector.workload import plan_of
from siliconbench.core.saturation import saturation_reasons

SATURATED, PARTIAL = "client saturated", "partial step"

# Above this share of prompt tokens served from vLLM's prefix cache, prompts meant to be unique were not.
UNEXPECTED_CACHE_HITS = 0.10

# Host CPU (all cores) above this while the agent's own CPU stayed below AGENT_IDLE_PCT: the loop lag
# came from the node's load (vLLM sharing the cores), not from the agent's work.
NODE_BUSY_PCT, AGENT_IDLE_PCT = 70.0, 50.0


def point_figures(label: str, point: PointRow, steps: list[StepRow]) -> PointFigures:
    """The figures the checks read at one sweep point; `steps` are the point's steps."""
    served = [s for s in steps if s.has_server_tokens]
    ttfts = [s.server_ttft_mean_ms for s in steps if s.server_ttft_mean_ms is not None]
    m = point.median
    return PointFigures(
        subject=label, concurrency=point.concurrency, mode=point.point.mode, rate_rps=point.point.rate_rps,
        mean_in_flight=num(m.mean_in_flight), sent_rps=num(m.sent_rps), full_share=num(m.full_concurrency_share),
        output_tps=num(m.output_tps), rps=num(m.rps), steady_output_tps=num(m.steady_output_tps),
        steady_s=num(m.steady_s), e2e_mean_ms=num(m.e2e_mean_ms), tpot_mean_ms=num(m.tpot_mean_ms),
        itl_token_mean_ms=num(m.itl_token_mean_ms), itl_chunk_p50_ms=num(q(m.itl_ms).p50),
        itl_token_p50_ms=num(q(m.itl_token_ms).p50), ttft_mean_ms=num(m.ttft_mean_ms),
        requests=int(sum(s.requests for s in steps)), errors=int(sum(s.errors for s in steps)),
        client_tokens=float(sum(s.tokens_out for s in served)) if served else None,
        server_tokens=float(sum(s.server_tokens_out or 0 for s in served)) if served else None,
        server_ttft_mean_ms=sum(ttfts) / len(ttfts) if ttfts else None, wall_s=num(m.wall_s),
    )


def point_findings(s: Series, figures: Figures) -> list[Finding]:
    """The consistency checks at each of the series' sweep points, then its prefix-cache warnings."""
    found = [f for p in figures.points_of(s)
             for f in checks.check_point(point_figures(s.label, p, figures.steps_at(s, p)))]
    return found + _cache_findings(s, figures)


def _cache_findings(s: Series, figures: Figures) -> list[Finding]:
    """A warning where the prefix cache served prompts the workload meant to be unique (synthetic prompts
    without shared_prompts); dataset and shared prompts repeat by design, so they get none."""
    plan = plan_of(s.config_json)
    if plan is None or plan.shared_prompts or plan.dataset:
        return []
    out = []
    for p in figures.points_of(s):
        rate = p.median.prefix_cache_hit_rate
        if rate is not None and rate > UNEXPECTED_CACHE_HITS:
            out.append(Finding("prefix cache", s.label, load(p), checks.TTFT,
                               f"vLLM served {rate:.0%} of prompt tokens from its prefix cache although the prompts "
                               "were meant to be unique: TTFT reads low (another client sending the same prompts?)"))
    return out


def step_flag(step: StepRow, host_cpu_pct: float | None) -> str:
    """Why the agent flagged a step as client-saturated, in words, with the likely cause."""
    point = step.point
    agent_cpu = step.agent_cpu_pct or 0.0
    reasons = saturation_reasons(agent_cpu, step.loop_lag_p99_ms or 0.0, step.dispatch_p99_ms or 0.0,
                                 point.open_loop and not point.capped)
    text = ", ".join(reasons) or "a load worker process was lost or crossed a threshold"
    if host_cpu_pct is not None and host_cpu_pct >= NODE_BUSY_PCT and agent_cpu < AGENT_IDLE_PCT:
        return (f"{text}; the node's CPU was {host_cpu_pct:.0f}% busy while the agent used {agent_cpu:.0f}% of a core: "
                "the server shares the agent's cores (run the agent on other cores or another node)")
    if agent_cpu >= AGENT_IDLE_PCT:
        return f"{text}; the agent's own CPU: give it more workers (--workers) or a faster core"
    return text


def host_cpu(figures: Figures, s: Series, step: StepRow | PointRow) -> float | None:
    """The node's mean CPU at the step's sweep point, where sampled."""
    node = figures.node_of(s, step.point)
    return None if node is None else node.host_cpu_mean_pct


def step_flags(s: Series, figures: Figures) -> list[Finding]:
    """One finding per sweep point with a step the agent flagged (reasons in words) or a step cut short."""
    out = []
    for p in figures.points_of(s):
        steps = figures.steps_at(s, p)
        flagged = [st for st in steps if st.client_saturated]
        if flagged:
            why = "; ".join(dict.fromkeys(step_flag(st, host_cpu(figures, s, p)) for st in flagged))
            out.append(Finding(SATURATED, s.label, load(p), SATURATED,
                               f"{len(flagged)} of {len(steps)} step(s) flagged by the agent ({why}): "
                               "the load may not be the one asked for; not publishable as is"))
        partial = [st for st in steps if not st.has_step]
        if partial:
            out.append(Finding(PARTIAL, s.label, load(p), PARTIAL,
                               f"{len(partial)} of {len(steps)} step(s) have no end record (the run stopped inside "
                               "them): their figures cover only the requests stored"))
    return out
