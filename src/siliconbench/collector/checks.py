"""Consistency checks: do a series' figures agree with each other (DESIGN §3)?

Each check takes summary figures (already aggregated in ClickHouse, or typed in from another
report) and returns findings attached to the figure they concern, so a renderer shows each warning
next to its number. The same checks run on measured sweeps and on the reference report's estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeGuard

# Tolerances: measured steps have ramp-up/drain tails and sampling noise; an estimate has none.
LITTLE_TOLERANCE = 0.25      # |measured req/s ÷ (concurrency ÷ mean E2E) − 1|
TOKEN_BOUND_SLACK = 0.10     # output tok/s may exceed concurrency ÷ per-token latency by this much
TPOT_ITL_TOLERANCE = 0.20    # |mean TPOT − mean per-token ITL| ÷ mean TPOT
CHUNKING_RATIO = 1.5         # chunk-ITL p50 ÷ per-token ITL p50 above this: multi-token chunks
SERVER_TOKENS_TOLERANCE = 0.02
SERVER_TTFT_SLACK_MS = 50.0
COST_TOLERANCE = 0.05

# Which table a check's finding belongs to.
TTFT, ITL, THROUGHPUT, SCALING, COST = "ttft", "itl", "throughput", "scaling", "cost"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    subject: str               # series label
    concurrency: int | None
    figure: str                # TTFT, ITL, THROUGHPUT, SCALING, COST
    message: str
    severity: str = "warning"  # or "note"

    def short(self) -> str:
        mark = "⚠" if self.severity == "warning" else "ℹ"
        return f"{mark} {self.check}"

    def line(self) -> str:
        at = f" at concurrency {self.concurrency}" if self.concurrency is not None else ""
        return f"{'⚠' if self.severity == 'warning' else 'ℹ'} {self.subject}{at} — {self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class PointFigures:
    """What the checks need of one sweep point; None where a figure is not known."""

    subject: str
    concurrency: int
    output_tps: float | None = None
    rps: float | None = None
    e2e_mean_ms: float | None = None
    tpot_mean_ms: float | None = None
    itl_token_mean_ms: float | None = None
    itl_chunk_p50_ms: float | None = None
    itl_token_p50_ms: float | None = None
    ttft_mean_ms: float | None = None
    requests: int | None = None
    errors: int | None = None
    client_tokens: float | None = None
    server_tokens: float | None = None
    server_ttft_mean_ms: float | None = None


def _known(value: float | None) -> TypeGuard[float]:
    """A finite number (one figure at a time, so that the type checker narrows each one)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:+.0f}%"


def littles_law(p: PointFigures) -> list[Finding]:
    """Requests: L = λW, so req/s ≈ concurrency ÷ mean E2E. Tokens: each stream yields at most one
    token per per-token latency, so output tok/s ≤ concurrency ÷ TPOT (or per-token ITL)."""
    out = []
    if _known(p.rps) and _known(p.e2e_mean_ms) and p.e2e_mean_ms > 0:
        expected = p.concurrency / (p.e2e_mean_ms / 1e3)
        deviation = p.rps / expected - 1
        if abs(deviation) > LITTLE_TOLERANCE:
            out.append(Finding("Little's law", p.subject, p.concurrency, THROUGHPUT,
                               f"measured {p.rps:,.2f} req/s vs concurrency ÷ mean E2E = {p.concurrency} ÷ "
                               f"{p.e2e_mean_ms / 1e3:,.3f} s = {expected:,.2f} req/s ({_pct(deviation)})"))
    per_token = p.tpot_mean_ms if _known(p.tpot_mean_ms) else p.itl_token_mean_ms
    name = "TPOT" if _known(p.tpot_mean_ms) else "per-token ITL"
    if _known(p.output_tps) and _known(per_token) and per_token > 0:
        bound = p.concurrency * 1e3 / per_token
        if p.output_tps > bound * (1 + TOKEN_BOUND_SLACK):
            out.append(Finding("Little's law", p.subject, p.concurrency, SCALING,
                               f"{p.output_tps:,.0f} output tok/s exceeds concurrency ÷ {name} = {p.concurrency} ÷ "
                               f"{per_token:g} ms = {bound:,.0f} tok/s (×{p.output_tps / bound:,.1f})"))
    return out


def tpot_vs_itl(p: PointFigures) -> list[Finding]:
    """Mean TPOT and mean per-token ITL measure the same decode speed (weighted differently)."""
    out = []
    if _known(p.tpot_mean_ms) and _known(p.itl_token_mean_ms) and p.tpot_mean_ms > 0:
        gap = (p.itl_token_mean_ms - p.tpot_mean_ms) / p.tpot_mean_ms
        if abs(gap) > TPOT_ITL_TOLERANCE:
            out.append(Finding("TPOT vs ITL", p.subject, p.concurrency, ITL,
                               f"mean per-token ITL {p.itl_token_mean_ms:,.2f} ms vs mean TPOT "
                               f"{p.tpot_mean_ms:,.2f} ms ({_pct(gap)}): stalls, or tokens not counted per chunk"))
    if _known(p.itl_chunk_p50_ms) and _known(p.itl_token_p50_ms) and p.itl_token_p50_ms > 0:
        ratio = p.itl_chunk_p50_ms / p.itl_token_p50_ms
        if ratio > CHUNKING_RATIO:
            out.append(Finding("multi-token chunks", p.subject, p.concurrency, ITL,
                               f"chunk-ITL p50 is {ratio:,.1f}× per-token ITL p50: chunks carry several tokens, "
                               "so chunk-ITL overstates the per-token latency", severity="note"))
    return out


def concurrency_one(p: PointFigures) -> list[Finding]:
    """At concurrency 1 one stream yields at most 1 ÷ TPOT tokens per second."""
    if p.concurrency != 1:
        return []
    per_token = p.tpot_mean_ms if _known(p.tpot_mean_ms) else p.itl_token_mean_ms
    name = "TPOT" if _known(p.tpot_mean_ms) else "ITL"
    if not (_known(p.output_tps) and _known(per_token)) or per_token <= 0:
        return []
    bound = 1e3 / per_token
    if p.output_tps > bound * (1 + TOKEN_BOUND_SLACK):
        return [Finding("tok/s at concurrency 1 vs 1/" + name, p.subject, 1, THROUGHPUT,
                        f"{p.output_tps:,.0f} tok/s at concurrency 1, but 1 ÷ {per_token:g} ms = {bound:,.0f} tok/s "
                        "is the most one stream can deliver")]
    return []


def errors(p: PointFigures) -> list[Finding]:
    if p.errors and p.requests:
        return [Finding("errors", p.subject, p.concurrency, THROUGHPUT,
                        f"{p.errors} of {p.requests} requests failed ({p.errors / p.requests:.1%}); "
                        "throughput counts successful requests only")]
    return []


def server_agreement(p: PointFigures) -> list[Finding]:
    """Client-side counts and TTFT against vLLM's own /metrics deltas over the same steps."""
    out = []
    if _known(p.client_tokens) and _known(p.server_tokens) and p.client_tokens > 0:
        gap = (p.server_tokens - p.client_tokens) / p.client_tokens
        if abs(gap) > SERVER_TOKENS_TOLERANCE:
            out.append(Finding("client vs server tokens", p.subject, p.concurrency, THROUGHPUT,
                               f"server generated {p.server_tokens:,.0f} tokens, clients received "
                               f"{p.client_tokens:,.0f} ({_pct(gap)})"))
    if _known(p.ttft_mean_ms) and _known(p.server_ttft_mean_ms):
        if p.ttft_mean_ms < p.server_ttft_mean_ms * 0.95:
            out.append(Finding("client vs server TTFT", p.subject, p.concurrency, TTFT,
                               f"client mean TTFT {p.ttft_mean_ms:,.1f} ms is below the server's "
                               f"{p.server_ttft_mean_ms:,.1f} ms, which cannot be: clocks or metrics disagree"))
        elif p.ttft_mean_ms - p.server_ttft_mean_ms > max(SERVER_TTFT_SLACK_MS, p.server_ttft_mean_ms):
            out.append(Finding("client vs server TTFT", p.subject, p.concurrency, TTFT,
                               f"client mean TTFT {p.ttft_mean_ms:,.1f} ms vs server {p.server_ttft_mean_ms:,.1f} ms: "
                               "the network or the HTTP front end adds most of the latency"))
    return out


def check_point(p: PointFigures) -> list[Finding]:
    return [*littles_law(p), *tpot_vs_itl(p), *concurrency_one(p), *errors(p), *server_agreement(p)]


def stated_cost(subject: str, usd_per_hour: float, tokens_per_s: float, stated_usd_per_million: float) -> list[Finding]:
    """A cost someone else computed, against the formula applied to their own price and throughput."""
    computed = usd_per_hour / (tokens_per_s * 3600) * 1e6
    gap = stated_usd_per_million / computed - 1
    if abs(gap) > COST_TOLERANCE:
        return [Finding("cost formula", subject, None, COST,
                        f"stated ${stated_usd_per_million:,.2f}/1M tokens, but ${usd_per_hour:,.2f}/h ÷ "
                        f"({tokens_per_s:,.0f} tok/s × 3600) × 10⁶ = ${computed:,.2f} ({_pct(gap)})")]
    return []
