"""Every consistency check's outcome at a sweep point, not only its warnings: passed, warned, noted (a
finding of severity note), or could not apply, with why. A report lists them per point, so a check that
passed is told from one that had nothing to read (collector/checks.py holds the checks)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from siliconbench.collector import checks
from siliconbench.collector.checks import COULD_NOT, NOTED, PASSED, WARNED, Finding, PointFigures
from siliconbench.collector.checks import known as _known

LITTLE, STEADY, OFFERED, TPOT_ITL, CHUNKS, ERRORS = (
    "Little's law", "steady state", "offered vs sent", "TPOT vs ITL", "multi-token chunks", "errors")
CONCURRENCY_ONE = "tok/s at concurrency 1"
NAMES = (LITTLE, STEADY, OFFERED, TPOT_ITL, CHUNKS, CONCURRENCY_ONE, ERRORS, checks.TOKENS_CHECK, checks.TTFT_CHECK)


@dataclass(frozen=True, slots=True)
class Outcome:
    check: str
    state: str   # PASSED, WARNED, NOTED, COULD_NOT
    why: str = ""

    def text(self) -> str:
        return f"{self.state}: {self.why}" if self.why else self.state


def _little(p: PointFigures) -> str | None:
    short = checks.too_short(p)
    if short:
        return short
    if not _known(p.e2e_mean_ms):
        return "no mean E2E (no successful request)"
    if p.point.open_loop and p.rate_rps <= 0:
        return "the offered rate was not recorded"
    if not _known(p.rps):
        return "no request rate"
    return None


def _steady(p: PointFigures) -> str | None:
    return None if _known(p.mean_in_flight) and p.concurrency > 0 else "no requests in flight measured"


def _offered(p: PointFigures) -> str | None:
    if p.rate_rps <= 0:
        return "the offered rate was not recorded"
    return None if _known(p.sent_rps) else "fewer than two requests sent"


def _tpot_itl(p: PointFigures) -> str | None:
    if not _known(p.tpot_mean_ms):
        return "no request with more than one output token"
    return None if _known(p.itl_token_mean_ms) else "no gap between chunks"


def _chunks(p: PointFigures) -> str | None:
    return None if _known(p.itl_chunk_p50_ms) and _known(p.itl_token_p50_ms) else "no gap between chunks"


def _concurrency_one(p: PointFigures) -> str | None:
    if p.point.open_loop or p.concurrency != 1:
        return "applies at closed-loop concurrency 1 only"
    return None if _known(p.tpot_mean_ms) or _known(p.itl_token_mean_ms) else "no per-token latency"


def _errors(p: PointFigures) -> str | None:
    return None if p.requests else "no requests"


def _why_not(p: PointFigures) -> dict[str, str | None]:
    """Each check, and why it could not apply at the point (None: it could)."""
    open_loop = p.point.open_loop
    return {LITTLE: _little(p), STEADY: "applies to closed-loop steps only" if open_loop else _steady(p),
            OFFERED: _offered(p) if open_loop else "applies to open-loop (rate) steps only",
            TPOT_ITL: _tpot_itl(p), CHUNKS: _chunks(p), CONCURRENCY_ONE: _concurrency_one(p), ERRORS: _errors(p)}


def _name(f: Finding) -> str:
    return CONCURRENCY_ONE if f.check.startswith(CONCURRENCY_ONE) else f.check


def outcomes(p: PointFigures) -> list[Outcome]:
    """Every check at the point: its findings where it found something, else passed or could not apply."""
    found: dict[str, list[Finding]] = {}
    for f in checks.check_point(p):
        found.setdefault(_name(f), []).append(f)
    out = []
    for check, reason in _why_not(p).items():
        if check in found:
            warned = any(f.severity == "warning" for f in found[check])
            out.append(Outcome(check, WARNED if warned else NOTED, "; ".join(f.message for f in found[check])))
        else:
            out.append(Outcome(check, COULD_NOT, reason) if reason else Outcome(check, PASSED))
    out += [Outcome(check, state, why) for check, (state, why) in checks.server_outcomes(p).items()]
    return out


def summary(found: list[Outcome]) -> str:
    """The outcomes in a few words, for a table's check cell where no check found anything: '✔ 5 passed,
    2 could not apply'."""
    counts = Counter(o.state for o in found)
    parts = [f"{counts[state]} {state}" for state in (PASSED, COULD_NOT) if counts[state]]
    return ("✔ " if counts[PASSED] else "") + ", ".join(parts)


def column(check: str) -> str:
    """A check's column in CSV: 'check_littles_law', 'check_client_vs_server_ttft'."""
    return "check_" + "_".join("".join(c if c.isalnum() else " " for c in check.lower().replace("'", "")).split())
