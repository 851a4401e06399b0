"""Consistency checks: do a series' figures agree with each other (DESIGN §3)?

Each check takes summary figures (already aggregated in ClickHouse, or typed in from another
report) and returns findings attached to the figure they concern, so a renderer shows each warning
next to its number. The same checks run on measured sweeps and on the reference report's estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeGuard

from siliconbench.collector.points import CLOSED, Point

# Tolerances: measured steps have ramp-up/drain tails and sampling noise; an estimate has none.
LITTLE_TOLERANCE = 0.25      # |measured req/s ÷ expected req/s − 1| (closed: concurrency ÷ mean E2E; open: offered)
FULL_CONCURRENCY = 0.90      # closed loop: mean in flight below this share of the concurrency -> a tail-heavy step
TOKEN_BOUND_SLACK = 0.10     # output tok/s may exceed concurrency ÷ per-token latency by this much
TPOT_ITL_TOLERANCE = 0.20    # |mean TPOT − mean per-token ITL| ÷ mean TPOT
CHUNKING_RATIO = 1.5         # chunk-ITL p50 ÷ per-token ITL p50 above this: multi-token chunks
SERVER_TOKENS_TOLERANCE = 0.02
SERVER_TTFT_SLACK_MS = 20.0   # client mean TTFT may exceed the server's by this, or by
SERVER_TTFT_SHARE = 0.25      # this share of the server's, whichever is more
COST_TOLERANCE = 0.05
# The checks read a closed step's steady figure once its steady part spans this many mean E2Es: a shorter
# one is a single round, whose streams prefill together and which ends at its fastest request, so its
# rate reads low (by up to 12 % in the reference scenarios, 8 requests at concurrency 8).
STEADY_LIFETIMES = 2.0
# Little's law describes a step that runs several request lifetimes: one shorter than this many mean E2Es is
# mostly ramp and drain, so its rate says nothing about the law and the rate check cannot apply to it.
LITTLE_LIFETIMES = 3.0

# Which table a check's finding belongs to.
TTFT, ITL, THROUGHPUT, SCALING, COST = "ttft", "itl", "throughput", "scaling", "cost"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    subject: str               # series label
    point: str | None          # the sweep point's label (collector/points.py); None: the whole series
    figure: str                # TTFT, ITL, THROUGHPUT, SCALING, COST
    message: str
    severity: str = "warning"  # or "note"

    def short(self) -> str:
        mark = "⚠" if self.severity == "warning" else "ℹ"
        return f"{mark} {self.check}"

    def line(self) -> str:
        at = f" at {self.point}" if self.point is not None else ""
        return f"{'⚠' if self.severity == 'warning' else 'ℹ'} {self.subject}{at} — {self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class PointFigures:
    """What the checks need of one sweep point; None where a figure is not known. `mode` and
    `rate_rps` with `concurrency` make the point (collector/points.py): closed loop by default."""

    subject: str
    concurrency: int
    mode: str = CLOSED
    rate_rps: float = 0.0
    mean_in_flight: float | None = None   # Σ E2E ÷ wall time (step_views.rollups_select)
    sent_rps: float | None = None         # achieved send rate (views.STEP_LOAD)
    full_share: float | None = None       # closed loop: share of the step with all streams in flight (STEP_STEADY)
    output_tps: float | None = None       # over the whole step
    rps: float | None = None
    steady_output_tps: float | None = None  # closed loop: over the step's steady part (STEP_STEADY)
    steady_s: float | None = None           # that part's length
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
    wall_s: float | None = None             # the step's wall time (median of the repetitions)

    @property
    def point(self) -> Point:
        return Point(self.mode, self.concurrency, self.rate_rps)

    @property
    def at(self) -> str:
        return self.point.label()


def _known(value: float | None) -> TypeGuard[float]:
    """A finite number (one figure at a time, so that the type checker narrows each one)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


known = _known  # for the outcomes of the checks (collector/check_outcomes.py)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:+.0f}%"


def _expected_rps(p: PointFigures) -> tuple[float, str] | None:
    """The request rate Little's law (L = λW) predicts for the point, and how: closed loop,
    concurrency ÷ mean E2E; open loop, the offered rate, or with a cap, the lower of it and
    cap ÷ mean E2E (the cap holds at most that many in flight)."""
    e2e_s = p.e2e_mean_ms / 1e3 if _known(p.e2e_mean_ms) and p.e2e_mean_ms > 0 else None
    point = p.point
    if not point.open_loop:
        if e2e_s is None or p.concurrency <= 0:
            return None
        return p.concurrency / e2e_s, f"concurrency ÷ mean E2E = {p.concurrency} ÷ {e2e_s:,.3f} s"
    if p.rate_rps <= 0:
        return None  # the rate was not recorded (points.UNKNOWN_OPEN)
    if not point.capped or e2e_s is None or p.rate_rps <= p.concurrency / e2e_s:
        return p.rate_rps, f"the offered {p.rate_rps:g} req/s"
    return p.concurrency / e2e_s, f"cap ÷ mean E2E = {p.concurrency} ÷ {e2e_s:,.3f} s (below the offered {p.rate_rps:g})"


def _in_flight(p: PointFigures) -> tuple[float, str] | None:
    """How many streams were in flight: the concurrency (closed loop), else the measured mean."""
    if not p.point.open_loop and p.concurrency > 0:
        return float(p.concurrency), "concurrency"
    if _known(p.mean_in_flight) and p.mean_in_flight > 0:
        return p.mean_in_flight, "mean in flight"
    return None


def _steady_tps(p: PointFigures) -> float | None:
    """The steady output tok/s where it fits the checks: a closed step's steady part (all streams in flight,
    the state Little's law and the token bound describe) of at least STEADY_LIFETIMES mean E2Es."""
    if not (_known(p.steady_output_tps) and _known(p.steady_s) and _known(p.e2e_mean_ms)):
        return None
    return p.steady_output_tps if p.steady_s >= STEADY_LIFETIMES * p.e2e_mean_ms / 1e3 else None


def _output_tps(p: PointFigures) -> tuple[float | None, str]:
    """(output tok/s, over what) for the checks: steady where it fits (`_steady_tps`), else the whole step."""
    steady = _steady_tps(p)
    return (steady, "steady ") if steady is not None else (p.output_tps, "")


def _tolerance(p: PointFigures) -> float:
    """LITTLE_TOLERANCE, widened for Poisson arrivals: the rate of n random arrivals is known to about
    ±1/√n (n = 16: ±25 %), so three of those are allowed before a finding."""
    if p.mode == "poisson" and p.requests:
        return max(LITTLE_TOLERANCE, 3 / math.sqrt(p.requests))
    return LITTLE_TOLERANCE


def too_short(p: PointFigures) -> str | None:
    """Why the step is too short for Little's law's rate check (LITTLE_LIFETIMES), or None."""
    if not (_known(p.wall_s) and _known(p.e2e_mean_ms)) or p.e2e_mean_ms <= 0:
        return None
    needed = LITTLE_LIFETIMES * p.e2e_mean_ms / 1e3
    if p.wall_s >= needed:
        return None
    return (f"step shorter than {LITTLE_LIFETIMES:g} mean E2Es ({p.wall_s:,.2f} s against {LITTLE_LIFETIMES:g} × "
            f"{p.e2e_mean_ms / 1e3:,.3f} s): mostly ramp and drain; give it more requests or duration_s")


def littles_law(p: PointFigures) -> list[Finding]:
    """Requests: L = λW, so req/s ≈ the rate `_expected_rps` gives; over a closed step's steady part in
    tokens: each of the C streams yields a request's output tokens per mean E2E, so steady output tok/s ≈
    that rate × output tokens per request (tokens arrive all along the part, while the streams complete in
    bursts that a count of requests over a part a round or two long gets wrong by up to C; where it fits,
    `_steady_tps`). Tokens: each
    stream yields at most one token per per-token latency, so output tok/s (steady where known) ≤ streams
    in flight ÷ TPOT (or per-token ITL)."""
    out = []
    expected = None if too_short(p) else _expected_rps(p)
    per_request = p.output_tps / p.rps if _known(p.output_tps) and _known(p.rps) and p.rps > 0 else None
    steady = _steady_tps(p)
    if expected is not None and expected[0] > 0 and per_request and steady is not None:
        wanted = expected[0] * per_request
        deviation = steady / wanted - 1
        if abs(deviation) > _tolerance(p):
            out.append(Finding("Little's law", p.subject, p.at, THROUGHPUT,
                               f"steady {steady:,.0f} output tok/s vs {expected[1]} × "
                               f"{per_request:,.1f} output tokens per request = {wanted:,.0f} tok/s "
                               f"({_pct(deviation)})"))
    elif _known(p.rps) and expected is not None and expected[0] > 0:
        deviation = p.rps / expected[0] - 1
        if abs(deviation) > _tolerance(p):
            out.append(Finding("Little's law", p.subject, p.at, THROUGHPUT,
                               f"measured {p.rps:,.2f} req/s vs {expected[1]} = {expected[0]:,.2f} req/s "
                               f"({_pct(deviation)})"))
    tps, over = _output_tps(p)
    per_token = p.tpot_mean_ms if _known(p.tpot_mean_ms) else p.itl_token_mean_ms
    name = "TPOT" if _known(p.tpot_mean_ms) else "per-token ITL"
    streams = _in_flight(p)
    if _known(tps) and _known(per_token) and per_token > 0 and streams is not None:
        bound = streams[0] * 1e3 / per_token
        if tps > bound * (1 + TOKEN_BOUND_SLACK):
            out.append(Finding("Little's law", p.subject, p.at, SCALING,
                               f"{over}{tps:,.0f} output tok/s exceeds {streams[1]} ÷ {name} = {streams[0]:g} ÷ "
                               f"{per_token:g} ms = {bound:,.0f} tok/s (×{tps / bound:,.1f})"))
    return out


def steady_state(p: PointFigures) -> list[Finding]:
    """A closed step runs below its concurrency while it fills and drains: with few requests per
    stream the tail weighs (40 requests at concurrency 16: mean in flight ≈ 13, throughput ×13 not
    ×16). Measured as mean in flight ÷ concurrency; an open step's offered rate against what was sent."""
    if not p.point.open_loop:
        if not (_known(p.mean_in_flight) and p.concurrency > 0):
            return []
        share = p.full_share if _known(p.full_share) else p.mean_in_flight / p.concurrency
        if share < FULL_CONCURRENCY:
            steady = (f"; over its steady part {p.steady_output_tps:,.0f} output tok/s against {p.output_tps:,.0f} "
                      "over the whole step" if _known(p.steady_output_tps) and _known(p.output_tps) else "")
            return [Finding("steady state", p.subject, p.at, SCALING,
                            f"all {p.concurrency} streams in flight for {share:.0%} of the step (mean in flight "
                            f"{p.mean_in_flight:,.1f}): its ramp and drain weigh on the whole-step throughput, so "
                            f"its scaling reads low{steady}; give more requests per step or duration_s",
                            severity="note")]
        return []
    if _known(p.sent_rps) and p.rate_rps > 0:
        gap = p.sent_rps / p.rate_rps - 1
        if abs(gap) > _tolerance(p):
            return [Finding("offered vs sent", p.subject, p.at, THROUGHPUT,
                            f"sent {p.sent_rps:,.2f} req/s against {p.rate_rps:g} offered ({_pct(gap)})"
                            + (": the cap held requests back" if p.point.capped and gap < 0 else ""))]
    return []


def tpot_vs_itl(p: PointFigures) -> list[Finding]:
    """Mean TPOT and mean per-token ITL measure the same decode speed (weighted differently)."""
    out = []
    if _known(p.tpot_mean_ms) and _known(p.itl_token_mean_ms) and p.tpot_mean_ms > 0:
        gap = (p.itl_token_mean_ms - p.tpot_mean_ms) / p.tpot_mean_ms
        if abs(gap) > TPOT_ITL_TOLERANCE:
            out.append(Finding("TPOT vs ITL", p.subject, p.at, ITL,
                               f"mean per-token ITL {p.itl_token_mean_ms:,.2f} ms vs mean TPOT "
                               f"{p.tpot_mean_ms:,.2f} ms ({_pct(gap)}): stalls, or tokens not counted per chunk"))
    if _known(p.itl_chunk_p50_ms) and _known(p.itl_token_p50_ms) and p.itl_token_p50_ms > 0:
        ratio = p.itl_chunk_p50_ms / p.itl_token_p50_ms
        if ratio > CHUNKING_RATIO:
            out.append(Finding("multi-token chunks", p.subject, p.at, ITL,
                               f"chunk-ITL p50 is {ratio:,.1f}× per-token ITL p50: chunks carry several tokens, "
                               "so chunk-ITL overstates the per-token latency", severity="note"))
    return out


def concurrency_one(p: PointFigures) -> list[Finding]:
    """At concurrency 1 one stream yields at most 1 ÷ TPOT tokens per second (steady figure where known)."""
    if p.point.open_loop or p.concurrency != 1:
        return []
    per_token = p.tpot_mean_ms if _known(p.tpot_mean_ms) else p.itl_token_mean_ms
    name = "TPOT" if _known(p.tpot_mean_ms) else "ITL"
    tps, over = _output_tps(p)
    if not (_known(tps) and _known(per_token)) or per_token <= 0:
        return []
    bound = 1e3 / per_token
    if tps > bound * (1 + TOKEN_BOUND_SLACK):
        return [Finding("tok/s at concurrency 1 vs 1/" + name, p.subject, p.at, THROUGHPUT,
                        f"{over}{tps:,.0f} tok/s at concurrency 1, but 1 ÷ {per_token:g} ms = {bound:,.0f} tok/s "
                        "is the most one stream can deliver")]
    return []


def errors(p: PointFigures) -> list[Finding]:
    if p.errors and p.requests:
        return [Finding("errors", p.subject, p.at, THROUGHPUT,
                        f"{p.errors} of {p.requests} requests failed ({p.errors / p.requests:.1%}); "
                        "throughput counts successful requests only")]
    return []


PASSED, WARNED, NOTED, COULD_NOT = "passed", "warned", "noted", "could not apply"
TOKENS_CHECK, TTFT_CHECK = "client vs server tokens", "client vs server TTFT"


def server_outcomes(p: PointFigures) -> dict[str, tuple[str, str]]:
    """Each client-vs-server check's outcome and why: passed, warned, or could not apply (no server
    figures: the target exposes no vLLM /metrics, or they were not scraped). Client TTFT includes the
    network and the HTTP front end, so it may exceed the server's by SERVER_TTFT_SLACK_MS or a quarter
    of the server's, whichever is more; it cannot be below it."""
    out = {TOKENS_CHECK: (COULD_NOT, "no server token counts"), TTFT_CHECK: (COULD_NOT, "no server TTFT")}
    if _known(p.client_tokens) and _known(p.server_tokens) and p.client_tokens > 0:
        gap = (p.server_tokens - p.client_tokens) / p.client_tokens
        text = f"server generated {p.server_tokens:,.0f} tokens, clients received {p.client_tokens:,.0f} ({_pct(gap)})"
        out[TOKENS_CHECK] = (WARNED if abs(gap) > SERVER_TOKENS_TOLERANCE else PASSED, text)
    if _known(p.ttft_mean_ms) and _known(p.server_ttft_mean_ms):
        client, server = p.ttft_mean_ms, p.server_ttft_mean_ms
        text = f"client mean TTFT {client:,.1f} ms vs server {server:,.1f} ms"
        if client < server * 0.95:
            out[TTFT_CHECK] = (WARNED, f"{text}: below the server's, which cannot be; clocks or metrics disagree")
        elif client - server > max(SERVER_TTFT_SLACK_MS, SERVER_TTFT_SHARE * server):
            out[TTFT_CHECK] = (WARNED, f"{text}: the network or the HTTP front end adds {client - server:,.1f} ms")
        else:
            out[TTFT_CHECK] = (PASSED, text)
    return out


def server_agreement(p: PointFigures) -> list[Finding]:
    """Client-side counts and TTFT against vLLM's own /metrics deltas over the same steps: the warned
    outcomes of `server_outcomes`."""
    figure = {TOKENS_CHECK: THROUGHPUT, TTFT_CHECK: TTFT}
    return [Finding(check, p.subject, p.at, figure[check], why)
            for check, (state, why) in server_outcomes(p).items() if state == WARNED]


def check_point(p: PointFigures) -> list[Finding]:
    return [*littles_law(p), *steady_state(p), *tpot_vs_itl(p), *concurrency_one(p), *errors(p),
            *server_agreement(p)]


def stated_cost(subject: str, usd_per_hour: float, tokens_per_s: float, stated_usd_per_million: float) -> list[Finding]:
    """A cost someone else computed, against the formula applied to their own price and throughput."""
    computed = usd_per_hour / (tokens_per_s * 3600) * 1e6
    gap = stated_usd_per_million / computed - 1
    if abs(gap) > COST_TOLERANCE:
        return [Finding("cost formula", subject, None, COST,
                        f"stated ${stated_usd_per_million:,.2f}/1M tokens, but ${usd_per_hour:,.2f}/h ÷ "
                        f"({tokens_per_s:,.0f} tok/s × 3600) × 10⁶ = ${computed:,.2f} ({_pct(gap)})")]
    return []
