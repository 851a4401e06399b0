"""What the report says beside its figures: the consistency checks per sweep point (collector/checks.py),
prefix-cache hits on prompts meant to be unique, the steps whose verdict is not ok (core/verdict.py, in
the words the agent's console used) and the steps cut short."""

from __future__ import annotations

from siliconbench.collector import checks
from siliconbench.collector.checks import Finding, PointFigures
from siliconbench.collector.figures import Figures, PointRow, StepRow
from siliconbench.collector.reports.picks import load, num, q
from siliconbench.collector.rollups import Series
from siliconbench.collector.workload import plan_of
from siliconbench.core.verdict import CLIENT_LIMITED, NODE_BUSY, OK, Evidence

PARTIAL, ENDED_EARLY = "partial step", "ended early"

# Above this share of prompt tokens served from vLLM's prefix cache, prompts meant to be unique were not.
UNEXPECTED_CACHE_HITS = 0.10


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


def step_evidence(step: StepRow) -> Evidence:
    """The evidence the agent stored with the step."""
    return Evidence(client_delay_p99_ms=step.client_delay_p99_ms or 0.0, client_delay_share=step.client_delay_share or 0.0,
                    sender_cpu_pct=step.agent_cpu_pct or 0.0, loop_lag_p99_ms=step.loop_lag_p99_ms or 0.0,
                    agent_cpu_pct=step.agent_processes_cpu_pct, node_cpu_pct=step.node_cpu_pct,
                    server_cpu_pct=step.server_cpu_pct)


def step_verdict(step: StepRow) -> tuple[str, str]:
    """The step's verdict as the agent judged it, and its sentence (the console's words): rebuilt from the
    stored evidence; a step from an agent that stored none reads by its own flag."""
    if not step.verdict:
        return ((CLIENT_LIMITED, f"{CLIENT_LIMITED}: flagged by an agent that stored no evidence")
                if step.client_saturated else (OK, OK))
    evidence = step_evidence(step)
    if evidence.verdict == step.verdict:
        return step.verdict, evidence.sentence()
    if step.verdict == CLIENT_LIMITED:
        return CLIENT_LIMITED, f"{CLIENT_LIMITED}: a load worker process was lost during the step"
    return step.verdict, f"{step.verdict}: {evidence.reasons() or evidence.cause()}"


def step_flags(s: Series, figures: Figures) -> list[Finding]:
    """Per sweep point: one finding for its client-limited steps (a warning: the point's throughput and
    latency are not the server's), one for its node-busy steps (a note: the figures stand), one for steps
    cut short."""
    out = []
    for p in figures.points_of(s):
        steps = figures.steps_at(s, p)
        judged = [(st, *step_verdict(st)) for st in steps]
        limited = [(st, words) for st, verdict, words in judged if verdict == CLIENT_LIMITED]
        if limited:
            out.append(Finding(CLIENT_LIMITED, s.label, load(p), CLIENT_LIMITED,
                               f"throughput and latency of {_steps(limited, len(steps))}: {_why(limited)}; "
                               "the load was not the one asked for: not publishable as is"))
        busy = [(st, words) for st, verdict, words in judged if verdict == NODE_BUSY]
        if busy:
            out.append(Finding(NODE_BUSY, s.label, load(p), NODE_BUSY,
                               f"{_steps(busy, len(steps))}: {_why(busy)}; the client sent the load asked for, "
                               "so the figures stand", severity="note"))
        if early := ended_early(steps):
            out.append(Finding(ENDED_EARLY, s.label, load(p), ENDED_EARLY,
                               f"{early} (the context full, or a stop): throughput and TPOT cover the tokens served",
                               severity="note"))
        partial = [st for st in steps if not st.has_step]
        if partial:
            out.append(Finding(PARTIAL, s.label, load(p), PARTIAL,
                               f"{len(partial)} of {len(steps)} step(s) have no end record (the run stopped inside "
                               "them): their figures cover only the requests stored"))
    return out


def ended_early(steps: list[StepRow]) -> str:
    """'16 output tokens asked, 9.5 served on average; 8 of 16 ended early' over `steps`, where some
    successful request returned fewer output tokens than it asked for; '' where none did."""
    early = sum(st.ended_early or 0 for st in steps)
    ok = sum(st.ok_requests for st in steps)
    if not early or not ok:
        return ""
    asked = max(st.tokens_asked or 0 for st in steps)
    served = sum(st.tokens_out for st in steps) / ok
    return f"{asked} output tokens asked, {served:.1f} served on average; {early} of {ok} ended early"


def _steps(judged: list[tuple[StepRow, str]], of: int) -> str:
    """'1 of 2 steps (step 6)', '2 of 2 steps (steps 1, 6)'."""
    numbers = ", ".join(str(st.step) for st, _ in judged)
    return f"{len(judged)} of {of} steps ({'step' if len(judged) == 1 else 'steps'} {numbers})"


def _why(judged: list[tuple[StepRow, str]]) -> str:
    return "; ".join(dict.fromkeys(words for _, words in judged))
