"""The tables of multi-turn sessions: per step and turn depth, latency and prefix reuse (expected by the
client against what the server reported); per step, the sessions, their duration and session goodput.
Declared as the other tables are (reports/table.py); the figures come from collector/sessions.py. A run
without sessions has no such table."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from siliconbench.collector.figures import PointRow
from siliconbench.collector.reports.picks import q
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import INT, MS, NUM, PCT, RATIO, RPS, TEXT, Declared, Table, cell
from siliconbench.collector.rollups import Series
from siliconbench.collector.sessions import SessionRow, TurnRow


@dataclass(frozen=True, slots=True)
class Row:
    """One row's source: a series' step, and a turn depth's or the step's session figures."""

    report: Report
    series: Series
    row: TurnRow | SessionRow

    @property
    def load(self) -> str | None:
        step = next((s for s in self.report.figures.steps_of(self.series) if s.step == self.row.step), None)
        return None if step is None else step.point.label()


def _share(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _turn(m: Row) -> TurnRow:
    assert isinstance(m.row, TurnRow)
    return m.row


def _session(m: Row) -> SessionRow:
    assert isinstance(m.row, SessionRow)
    return m.row


TURNS = Declared("session_turns", "Sessions by turn depth: latency and prefix reuse", (
    cell("Scenario", TEXT, lambda m: m.series.label),
    cell("step", INT, lambda m: m.row.step),
    cell("load", TEXT, lambda m: m.load),
    cell("turn", INT, lambda m: _turn(m).turn),
    cell("agent", TEXT, lambda m: _turn(m).agent_kind or "session"),
    cell("requests", INT, lambda m: _turn(m).requests),
    cell("prompt tokens (mean)", NUM, lambda m: _turn(m).prompt_tokens_mean),
    cell("TTFT p50", MS, lambda m: q(_turn(m).ttft_ms).p50),
    cell("TTFT p99", MS, lambda m: q(_turn(m).ttft_ms).p99),
    cell("ITL p50", MS, lambda m: q(_turn(m).itl_ms).p50),
    cell("ITL p99", MS, lambda m: q(_turn(m).itl_ms).p99),
    cell("E2E p50", MS, lambda m: q(_turn(m).e2e_ms).p50),
    cell("E2E p99", MS, lambda m: q(_turn(m).e2e_ms).p99),
    cell("expected cached tokens", INT, lambda m: _turn(m).expected_cached),
    cell("server cached tokens", INT, lambda m: _turn(m).cached if _turn(m).reported else None),
    cell("expected reuse", PCT, lambda m: _share(_turn(m).expected_cached, _turn(m).prompt_tokens_total)),
    cell("achieved reuse", PCT, lambda m: _share(_turn(m).cached, _turn(m).prompt_tokens_total) if _turn(m).reported
         else None),
    cell("turns within one block", INT, lambda m: _turn(m).within_block if _turn(m).reported else None),
    cell("block size", INT, lambda m: _turn(m).block_size or None),
))
TURNS_CAPTION = (
    "Per step, turn depth (0: a session's first turn) and agent (session: its own plain turns; tool, fork, spawn, "
    "turn: the agent graph's nodes, a fork's sub-agents counting on from their parent's depth), over successful "
    "turns. expected cached tokens = the "
    "leading prompt tokens the server had already seen, by the token ids the client sent and received (its "
    "prompts and answers, from the server's own /tokenize), in whole blocks of the server's KV block size, short "
    "of the prompt's last token; server cached = usage.prompt_tokens_details.cached_tokens (vLLM with "
    "--enable-prompt-tokens-details; empty where the server did not say). reuse = cached ÷ prompt tokens. A "
    "server that reports less than expected evicted (or never kept) what its cache could have served.")

SESSIONS = Declared("sessions", "Sessions per step: duration and session goodput", (
    cell("Scenario", TEXT, lambda m: m.series.label),
    cell("step", INT, lambda m: m.row.step),
    cell("load", TEXT, lambda m: m.load),
    cell("sessions", INT, lambda m: _session(m).sessions),
    cell("turns/session", RATIO, lambda m: _session(m).turns_mean),
    cell("duration p50", MS, lambda m: q(_session(m).duration_ms).p50),
    cell("duration p99", MS, lambda m: q(_session(m).duration_ms).p99),
    cell("good sessions", INT, lambda m: _session(m).good_sessions),
    cell("good share", PCT, lambda m: _share(_session(m).good_sessions, _session(m).sessions)),
    cell("session goodput", RPS, lambda m: _session(m).goodput_sps),
    cell("expected cached tokens", INT, lambda m: _session(m).expected_cached),
    cell("server cached tokens", INT, lambda m: _session(m).cached),
    cell("/metrics prefix-cache hits", INT, lambda m: _session(m).server_hits),
))
SESSIONS_CAPTION = (
    "Per step, over the sessions it started (a session's sub-agents are part of it). duration = a session's first send → its last byte (think time "
    "included). A good session: every turn succeeded and met every SLO given (the report's --slo; none: every "
    "successful turn counts); session goodput = good sessions ÷ the step's wall time (sessions/s). Cached tokens "
    "summed over the step's successful turns; /metrics prefix-cache hits = the server's vllm:prefix_cache_hits "
    "counter over the step (every request the server served meanwhile).")


def session_tables(report: Report) -> list[Table]:
    """The two tables, or none for runs without sessions."""
    sessions = report.sessions
    if not sessions.steps:
        return []
    by_key = {s.key: s for s in report.series}
    turns = (Row(report, by_key[r.key], r) for r in sessions.turns if r.key in by_key)
    steps = (Row(report, by_key[r.key], r) for r in sessions.steps if r.key in by_key)
    return [TURNS.build(turns, TURNS_CAPTION), SESSIONS.build(steps, SESSIONS_CAPTION)]


# ---- the same figures as CSV columns on each sweep point's row: the step's sessions, then each turn depth ----

_CSV_SESSION: tuple[tuple[str, Callable[[SessionRow], float | int | None]], ...] = (
    ("sessions", lambda r: r.sessions),
    ("session_turns_mean", lambda r: r.turns_mean),
    ("session_duration_p50_ms", lambda r: q(r.duration_ms).p50),
    ("good_sessions", lambda r: r.good_sessions),
    ("session_goodput_sps", lambda r: r.goodput_sps),
)
_CSV_TURN: tuple[tuple[str, Callable[[TurnRow], float | int | None]], ...] = (
    ("ttft_p50_ms", lambda r: q(r.ttft_ms).p50),
    ("itl_p50_ms", lambda r: q(r.itl_ms).p50),
    ("e2e_p50_ms", lambda r: q(r.e2e_ms).p50),
    ("prompt_tokens_mean", lambda r: r.prompt_tokens_mean),
    ("expected_cached_tokens", lambda r: r.expected_cached),
    ("cached_tokens", lambda r: r.cached if r.reported else None),
)


def _depths(report: Report) -> list[int]:
    return sorted({r.turn for r in report.sessions.turns if not r.agent_kind})


def session_columns(report: Report) -> list[str]:
    """The session figures' columns, then `turnN:figure` for each turn depth of the sessions' own plain turns
    (the agent graph's are in the tables); none without sessions."""
    if not report.sessions.steps:
        return []
    return [name for name, _ in _CSV_SESSION] + [f"turn{d}:{name}" for d in _depths(report) for name, _ in _CSV_TURN]


def session_cells(report: Report, series: Series, point: PointRow) -> list[float | int | None]:
    """The values of `session_columns` at one sweep point of a series: each the median of the repetitions."""
    if not report.sessions.steps:
        return []
    steps = set(point.steps)
    mine = [r for r in report.sessions.steps if r.key == series.key and r.step in steps]
    cells = [_median([get(r) for r in mine]) for _, get in _CSV_SESSION]
    turns = [r for r in report.sessions.turns if r.key == series.key and r.step in steps and not r.agent_kind]
    for depth in _depths(report):
        at = [r for r in turns if r.turn == depth]
        cells += [_median([get(r) for r in at]) for _, get in _CSV_TURN]
    return cells


def _median(values: list[float | int | None]) -> float | int | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None
