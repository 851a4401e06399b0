"""What the streams said by kind and by model, as typed records read from collector/answer_views.py: one
`AnswerRow` per step and served model, one `FirstRequestRow` per model of a run on a node. Built like
collector/figures.py's records (every view column a field, percentile arrays as `Percentiles`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from siliconbench.collector.figures import Percentiles, record
from siliconbench.collector.rollups import Series
from siliconbench.collector.answer_views import model_first_select, step_answers_select
from siliconbench.collector.step_views import RUNS_WHERE, Need
from siliconbench.collector.store import Store


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """One step of a run on one node, for one served model (view step_answers)."""

    run_id: str
    agent_id: str
    step: int
    model: str
    requests: int = 0
    ok_requests: int = 0
    answered: int = 0
    ttft_ms: Percentiles | None = None
    ttfa_ms: Percentiles | None = None
    ttfa_mean_ms: float | None = None
    reasoning_requests: int = 0
    reasoning_tokens: int = 0
    reasoning_chunks: int = 0
    answer_chunks: int = 0
    usage_tokens: int = 0
    reasoning_ms: Percentiles | None = None
    answer_itl_ms: Percentiles | None = None
    reasoning_itl_ms: Percentiles | None = None
    silent_reasoning: int = 0
    tool_calls: int = 0
    tool_calls_invalid: int = 0
    tool_call_ms: Percentiles | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.agent_id)

    @classmethod
    def of(cls, row: dict) -> AnswerRow:
        """From a view row. ClickHouse's quantiles over no value read 0: a figure with no value under it
        (no answer, no reasoning, no gap of a kind, no tool call) is None instead."""
        rec = record(cls, row)
        missing: dict[str, Any] = {name: None for name, empty in (
            ("ttft_ms", not rec.ok_requests), ("ttfa_ms", not rec.answered),
            ("reasoning_ms", not rec.reasoning_requests),
            ("reasoning_itl_ms", rec.reasoning_chunks <= rec.reasoning_requests),
            ("answer_itl_ms", rec.answer_chunks <= rec.answered), ("tool_call_ms", not rec.tool_calls)) if empty}
        return replace(rec, **missing)

    @property
    def counted_chunks(self) -> int:
        """Reasoning and answer chunks: what the stream showed, against the server's usage count."""
        return self.reasoning_chunks + self.answer_chunks


@dataclass(frozen=True, slots=True)
class FirstRequestRow:
    """A served model's first request in a run on one node, apart from its warm ones (view
    model_first_requests): for an adapter, its load cost shows as first_ttft_ms above warm_ttft_p50_ms."""

    run_id: str
    agent_id: str
    model: str
    requests: int = 0
    first_request_id: str = ""
    first_error_class: str = ""
    first_ttft_ms: float | None = None
    warm_requests: int = 0
    warm_ttft_p50_ms: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.run_id, self.agent_id)


@dataclass(slots=True)
class Answers:
    steps: list[AnswerRow] = field(default_factory=list)
    first_requests: list[FirstRequestRow] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.steps})


R = TypeVar("R")


def load_answers(store: Store, series: list[Series], need: Need | None = None) -> Answers:
    """The series' answer figures, one typed record per view row; `need` (step_views.need): what the series'
    steps need computed beyond their kept rows (None: whatever any does)."""
    compute = need is None or need.compute_answers
    compute_models = need is None or need.compute_models
    keys = {s.key for s in series}
    params = {"runs": sorted({s.run_id for s in series})}

    def mine(sql: str, build: Callable[[dict], R]) -> list[R]:
        result = store.query(sql, params)
        rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
        return [build(row) for row in rows if (row["run_id"], row["agent_id"]) in keys]

    return Answers(steps=mine(step_answers_select(RUNS_WHERE, compute), AnswerRow.of),
                   first_requests=mine(model_first_select(RUNS_WHERE, compute, compute_models),
                                       partial(record, FirstRequestRow)))
