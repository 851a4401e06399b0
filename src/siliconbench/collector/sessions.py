"""Multi-turn sessions as typed records read from collector/session_views.py: one `TurnRow` per step and
turn depth, one `SessionRow` per step (its goodput under the report's SLOs). Built as collector/answers.py's
records are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeVar

from siliconbench.collector.figures import Percentiles, record
from siliconbench.collector.rollups import Series, Slo
from siliconbench.collector.store import Store
from siliconbench.collector.session_views import step_sessions_select, turn_depths_select
from siliconbench.collector.step_views import RUNS_WHERE, Need


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One turn depth of one step of a run on one node (view turn_depths)."""

    run_id: str
    agent_id: str
    step: int
    turn: int
    agent_kind: str = ""
    requests: int = 0
    ok_requests: int = 0
    ttft_ms: Percentiles | None = None
    itl_ms: Percentiles | None = None
    e2e_ms: Percentiles | None = None
    prompt_tokens_mean: float | None = None
    prompt_tokens_total: int = 0
    expected_cached: int = 0
    reported: int = 0
    cached: int = 0
    within_block: int = 0
    block_size: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.agent_id)

    @classmethod
    def of(cls, row: dict) -> TurnRow:
        """From a view row; figures with no value under them (no successful turn) are None."""
        rec = record(cls, row)
        if rec.ok_requests:
            return rec
        return replace(rec, ttft_ms=None, itl_ms=None, e2e_ms=None, prompt_tokens_mean=None)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """The sessions of one step of a run on one node (view step_sessions)."""

    run_id: str
    agent_id: str
    step: int
    sessions: int = 0
    turns_mean: float | None = None
    turns: int = 0
    duration_ms: Percentiles | None = None
    good_sessions: int = 0
    wall_s: float = 0.0
    goodput_sps: float = 0.0
    expected_cached: int = 0
    cached: int = 0
    server_hits: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.agent_id)


@dataclass(slots=True)
class Sessions:
    turns: list[TurnRow] = field(default_factory=list)
    steps: list[SessionRow] = field(default_factory=list)


R = TypeVar("R")
_TURNS_SQL = turn_depths_select(RUNS_WHERE)
_STEPS_SQL = step_sessions_select(RUNS_WHERE)


def load_sessions(store: Store, series: list[Series], slo: Slo, need: Need | None = None) -> Sessions:
    """The series' session figures (none for runs without sessions; `need` step_views.Need: no query when no
    kept step had a request in a session)."""
    if need is not None and not need.sessions:
        return Sessions()
    keys = {s.key for s in series}
    params: dict = {"runs": sorted({s.run_id for s in series}), **slo.params()}

    def mine(sql: str, build: Callable[[dict], R]) -> list[R]:
        result = store.query(sql, params)
        rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
        return [build(row) for row in rows if (row["run_id"], row["agent_id"]) in keys]

    return Sessions(turns=mine(_TURNS_SQL, TurnRow.of), steps=mine(_STEPS_SQL, partial(record, SessionRow)))
