"""Views of what the streams said by kind and by model: reasoning, answers and tool calls per step and
served model (`step_answers`), and each model's first request apart from its warm ones
(`model_first_requests`: an adapter's load cost). Created (replaced) with the other views at every start.

Per-request figures are collector/formulas.py's; percentiles are exact, as in collector/views.py.

  step_answers           per run x node x step x model, over successful requests: TTFT (any kind), time to
                         first answer token (TTFA), reasoning tokens and chunks, reasoning duration, ITL of the
                         answer and of the reasoning, output tokens by the server's usage beside the chunks
                         counted, requests that reasoned without streaming it, tool calls (and those whose
                         arguments are not JSON), and the agent turn (send -> complete tool call)
  model_first_requests   per run x node x model: the first request sent to the model (by start time) and the
                         TTFT p50 of the others (warm); the first request's status says whether it succeeded
"""

from __future__ import annotations

from siliconbench.collector.formulas import REQUEST_FIGURES
from siliconbench.collector.schema import KEPT_MODELS
from siliconbench.collector.step_sql import answers_select
from siliconbench.collector.step_views import ALL, kept_select, not_kept_rows

def answer_figures_select(where: str, compute: bool = True) -> str:
    """Every step's rows by model (of `where`): kept where they hold (collector/kept.py), else computed from the
    step's rows; `kept` says which. `compute` False: the kept rows only (step_views.Need)."""
    kept = kept_select("kept_answers", where, checked=not compute)
    return f"SELECT *, true AS kept FROM ({kept})" + (f"""
UNION ALL
SELECT *, false AS kept FROM ({answers_select(not_kept_rows(kept, where))})""" if compute else "")


ANSWER_FIGURES = f"CREATE OR REPLACE VIEW {{db}}.answer_figures AS {answer_figures_select(ALL)}"

COLUMNS = ("run_id", "agent_id", "step", "model", "requests", "ok_requests", "answered", "ttft_ms", "ttfa_ms",
            "ttfa_mean_ms", "reasoning_requests", "reasoning_tokens", "reasoning_chunks", "answer_chunks",
            "usage_tokens", "reasoning_ms", "answer_itl_ms", "reasoning_itl_ms", "silent_reasoning", "tool_calls",
            "tool_calls_invalid", "tool_call_ms")
def step_answers_select(where: str, compute: bool = True) -> str:
    return (f"SELECT {', '.join(COLUMNS)} FROM ({answer_figures_select(where, compute)}) "
            "ORDER BY run_id, agent_id, step, model")


STEP_ANSWERS = f"CREATE OR REPLACE VIEW {{db}}.step_answers AS {step_answers_select(ALL)}"

# The first request of each model (the earliest first of its steps), and the others' TTFT p50 pooled exactly
# from the rows: every successful request of the model but the first (one sent at the same nanosecond with
# the same TTFT as the first is left out with it).
def _firsts(where: str, compute: bool) -> str:
    return f"""SELECT run_id, agent_id, model, sum(requests) AS requests,
        argMin((first_start_ns, first_error_class = '', first_ttft_ms, first_request_id, first_error_class),
               (first_start_ns, first_error_class = '', first_ttft_ms)) AS first
    FROM ({answer_figures_select(where, compute)}) GROUP BY run_id, agent_id, model"""


def _computed_firsts(where: str, compute: bool) -> str:
    """Per run, node and model (of `where`): its first request and the others' TTFT p50, from the rows."""
    return f"""
SELECT f.run_id AS run_id, f.agent_id AS agent_id, f.model AS model, f.requests AS requests,
    f.first.4 AS first_request_id, f.first.5 AS first_error_class, f.first.3 AS first_ttft_ms,
    ifNull(w.ok_requests, 0) - f.first.2 AS warm_requests, w.warm_ttft_p50_ms AS warm_ttft_p50_ms
FROM ({_firsts(where, compute)}) AS f
LEFT JOIN (
    WITH {REQUEST_FIGURES}
    SELECT r.run_id AS run_id, r.agent_id AS agent_id, r.model AS model, countIf(r.error_class = '') AS ok_requests,
        quantileExactIf(0.5)(req_ttft_ms, r.error_class = ''
                             AND (req_start_ns, req_ttft_ms) != (ff.first.1, ff.first.3)) AS warm_ttft_p50_ms
    FROM (SELECT * FROM {{db}}.requests WHERE {where}) AS r
    INNER JOIN ({_firsts(where, compute)}) AS ff ON r.run_id = ff.run_id AND r.agent_id = ff.agent_id AND r.model = ff.model
    GROUP BY r.run_id, r.agent_id, r.model
) AS w ON w.run_id = f.run_id AND w.agent_id = f.agent_id AND w.model = f.model
SETTINGS join_use_nulls = 0"""


def _node_rows(where: str) -> str:
    return (f"SELECT run_id, agent_id, sum(requests) AS run_rows FROM {{db}}.request_digests FINAL WHERE {where} "
            "GROUP BY run_id, agent_id")


def _kept_models(where: str, checked: bool = False) -> str:
    """The kept rows (collector/kept.py) that hold: the node's rows in the run are as many as when they were kept
    (`checked`: the reader found they all do)."""
    if checked:
        return f"SELECT * FROM {{db}}.kept_models FINAL WHERE {where}"
    return f"""SELECT k.* FROM (SELECT * FROM {{db}}.kept_models FINAL WHERE {where}) AS k
    INNER JOIN ({_node_rows(where)}) AS c ON k.run_id = c.run_id AND k.agent_id = c.agent_id AND k.run_rows = c.run_rows"""


_MODEL_COLUMNS = ", ".join(n for n in KEPT_MODELS.names if n not in ("run_rows", "kept_at"))


def model_first_select(where: str, compute: bool = True, compute_models: bool = True) -> str:
    """Per run, node and model (of `where`): its first request and the others' TTFT p50, kept or computed from the
    rows (`compute`: steps' answers to compute; `compute_models`: nodes whose kept rows do not hold)."""
    kept = _kept_models(where, checked=not compute_models)
    rest = f"{where} AND (run_id, agent_id) NOT IN (SELECT run_id, agent_id FROM ({kept}))"
    union = f"SELECT {_MODEL_COLUMNS} FROM ({kept})" + (
        f"\nUNION ALL\nSELECT {_MODEL_COLUMNS} FROM ({_computed_firsts(rest, compute)})" if compute_models else "")
    return f"SELECT * FROM ({union}) ORDER BY run_id, agent_id, model"


def keep_models_select(where: str) -> str:
    """kept_models rows for the nodes of `where`, computed now from their rows."""
    return f"""SELECT {', '.join(KEPT_MODELS.names)} FROM (
    SELECT f.*, c.run_rows AS run_rows, now64(9, 'UTC') AS kept_at FROM ({_computed_firsts(where, True)}) AS f
    INNER JOIN ({_node_rows(where)}) AS c ON f.run_id = c.run_id AND f.agent_id = c.agent_id)"""


MODEL_FIRST_REQUESTS = f"CREATE OR REPLACE VIEW {{db}}.model_first_requests AS {model_first_select(ALL)}"

ANSWER_VIEWS: dict[str, str] = {
    "answer_figures": ANSWER_FIGURES,
    "step_answers": STEP_ANSWERS,
    "model_first_requests": MODEL_FIRST_REQUESTS,
}
