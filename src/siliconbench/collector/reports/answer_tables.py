"""The tables of what the streams said, by served model: per step, TTFT (any kind) beside the time to
first answer token, the reasoning (tokens, duration, ITL) beside the answer's ITL, the server's output
tokens beside the chunks the stream showed, and tool calls; then each model's first request apart from its
warm ones (an adapter's load cost). Declared as the other tables are (reports/table.py); the figures come
from collector/answers.py."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from siliconbench.collector.answers import AnswerRow, FirstRequestRow
from siliconbench.collector.figures import PointRow
from siliconbench.collector.reports.picks import q
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import INT, MS, RATIO, TEXT, Declared, Table, cell
from siliconbench.collector.rollups import Series


@dataclass(frozen=True, slots=True)
class ModelStep:
    """One row's source: a series' step, for one served model."""

    report: Report
    series: Series
    row: AnswerRow

    @property
    def load(self) -> str | None:
        step = next((s for s in self.report.figures.steps_of(self.series) if s.step == self.row.step), None)
        return None if step is None else step.point.label()


def _per_reasoning_request(r: AnswerRow) -> float | None:
    return r.reasoning_tokens / r.reasoning_requests if r.reasoning_requests else None


def _differs(r: AnswerRow) -> str:
    """Where the server's count and the stream's disagree, why it may."""
    if r.silent_reasoning:
        return f"{r.silent_reasoning} request(s) reasoned without streaming it"
    if r.usage_tokens != r.counted_chunks:
        return "chunks carried several tokens each"
    return ""


ANSWERS = Declared("answers", "Answers by model: reasoning, first answer token, tool calls", (
    cell("Scenario", TEXT, lambda m: m.series.label),
    cell("step", INT, lambda m: m.row.step),
    cell("load", TEXT, lambda m: m.load),
    cell("model", TEXT, lambda m: m.row.model or "(not recorded)"),
    cell("requests", INT, lambda m: m.row.requests),
    cell("TTFT p50", MS, lambda m: q(m.row.ttft_ms).p50),
    cell("TTFA p50", MS, lambda m: q(m.row.ttfa_ms).p50),
    cell("TTFA p99", MS, lambda m: q(m.row.ttfa_ms).p99),
    cell("reasoning tokens", INT, lambda m: m.row.reasoning_tokens),
    cell("reasoning tokens/request", RATIO, lambda m: _per_reasoning_request(m.row)),
    cell("reasoning p50", MS, lambda m: q(m.row.reasoning_ms).p50),
    cell("reasoning ITL p50", MS, lambda m: q(m.row.reasoning_itl_ms).p50),
    cell("answer ITL p50", MS, lambda m: q(m.row.answer_itl_ms).p50),
    cell("answer ITL p99", MS, lambda m: q(m.row.answer_itl_ms).p99),
    cell("output tokens (usage)", INT, lambda m: m.row.usage_tokens),
    cell("chunks (reasoning + answer)", INT, lambda m: m.row.counted_chunks),
    cell("usage ≠ chunks", TEXT, lambda m: _differs(m.row)),
    cell("silent reasoning", INT, lambda m: m.row.silent_reasoning),
    cell("tool calls", INT, lambda m: m.row.tool_calls),
    cell("tool calls, arguments not JSON", INT, lambda m: m.row.tool_calls_invalid),
    cell("tool-call turn p50", MS, lambda m: q(m.row.tool_call_ms).p50),
))
ANSWERS_CAPTION = (
    "Per step and served model, over successful requests. TTFT = send → first chunk of any kind (reasoning, "
    "answer or tool call); TTFA = send → first answer (content) chunk. reasoning = first → last reasoning chunk "
    "(delta.reasoning_content or delta.reasoning); reasoning tokens by the server's continuous usage. ITL of "
    "the reasoning and of the answer = gaps between consecutive chunks of that kind. output tokens (usage) "
    "include the reasoning; chunks counts what the stream showed. silent reasoning = requests with no "
    "reasoning chunk whose first chunk carried ≥ 16 tokens (the model reasoned without streaming it: one long "
    "silence, then the answer). tool-call turn = send → last tool-call chunk; arguments are the call's "
    "fragments joined, checked as JSON.")


@dataclass(frozen=True, slots=True)
class ModelFirst:
    report: Report
    series: Series
    row: FirstRequestRow


def _cold_extra(r: FirstRequestRow) -> float | None:
    if r.first_ttft_ms is None or r.warm_ttft_p50_ms is None or r.first_error_class:
        return None
    return r.first_ttft_ms - r.warm_ttft_p50_ms


FIRST_REQUESTS = Declared("first_requests", "First request to each model, apart from its warm ones", (
    cell("Scenario", TEXT, lambda m: m.series.label),
    cell("model", TEXT, lambda m: m.row.model or "(not recorded)"),
    cell("requests", INT, lambda m: m.row.requests),
    cell("first request", TEXT, lambda m: m.row.first_request_id),
    cell("its outcome", TEXT, lambda m: m.row.first_error_class or "ok"),
    cell("its TTFT", MS, lambda m: None if m.row.first_error_class else m.row.first_ttft_ms),
    cell("warm TTFT p50", MS, lambda m: m.row.warm_ttft_p50_ms),
    cell("first − warm", MS, lambda m: _cold_extra(m.row)),
))
FIRST_REQUESTS_CAPTION = (
    "Each served model's first measured request of the run (by send time; warm-up requests go to the plan's "
    "model only) against the p50 TTFT of its later successful requests: for a LoRA adapter, first − warm is "
    "the cost of loading it.")


def answer_tables(report: Report) -> list[Table]:
    answers = report.answers
    by_key = {s.key: s for s in report.series}
    steps: Iterable[ModelStep] = (ModelStep(report, by_key[r.key], r) for r in answers.steps if r.key in by_key)
    firsts = (ModelFirst(report, by_key[r.key], r) for r in answers.first_requests if r.key in by_key)
    return [ANSWERS.build(steps, ANSWERS_CAPTION), FIRST_REQUESTS.build(firsts, FIRST_REQUESTS_CAPTION)]


# ---- the same figures as CSV columns: one group per served model, on each sweep point's row ---------------

_CSV_FIGURES: tuple[tuple[str, Callable[[AnswerRow], float | int | None]], ...] = (
    ("requests", lambda r: r.requests),
    ("ttft_p50_ms", lambda r: q(r.ttft_ms).p50),
    ("ttfa_p50_ms", lambda r: q(r.ttfa_ms).p50),
    ("ttfa_p99_ms", lambda r: q(r.ttfa_ms).p99),
    ("reasoning_tokens", lambda r: r.reasoning_tokens),
    ("reasoning_p50_ms", lambda r: q(r.reasoning_ms).p50),
    ("reasoning_itl_p50_ms", lambda r: q(r.reasoning_itl_ms).p50),
    ("answer_itl_p50_ms", lambda r: q(r.answer_itl_ms).p50),
    ("usage_tokens", lambda r: r.usage_tokens),
    ("chunks", lambda r: r.counted_chunks),
    ("silent_reasoning", lambda r: r.silent_reasoning),
    ("tool_calls", lambda r: r.tool_calls),
    ("tool_calls_invalid", lambda r: r.tool_calls_invalid),
    ("tool_call_p50_ms", lambda r: q(r.tool_call_ms).p50),
)


def model_columns(report: Report) -> list[str]:
    """`MODEL:figure` for each served model of the report and each figure."""
    return [f"{model}:{name}" for model in report.answers.models for name, _ in _CSV_FIGURES]


def model_cells(report: Report, series: Series, point: PointRow) -> list[float | int | None]:
    """The values of `model_columns` at one sweep point of a series: each the median of the repetitions."""
    steps = set(point.steps)
    rows = [r for r in report.answers.steps if r.key == series.key and r.step in steps]
    cells: list[float | int | None] = []
    for model in report.answers.models:
        mine = [r for r in rows if r.model == model]
        for _, get in _CSV_FIGURES:
            values = [v for v in map(get, mine) if v is not None]
            cells.append(statistics.median(values) if values else None)
    return cells
