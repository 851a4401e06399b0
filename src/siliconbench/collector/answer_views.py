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
from siliconbench.collector.step_sql import answers_select

# The kept rows (collector/kept.py) that still hold, then the steps without them computed from their rows.
_KEPT = """SELECT k.* FROM {db}.kept_answers AS k FINAL
    INNER JOIN (SELECT run_id, agent_id, step, sum(requests) AS digested FROM {db}.request_digests FINAL
                GROUP BY run_id, agent_id, step) AS d
        ON k.run_id = d.run_id AND k.agent_id = d.agent_id AND k.step = d.step AND k.step_rows = d.digested"""
_NOT_KEPT = f"""(SELECT * FROM {{db}}.requests WHERE (run_id, agent_id, step) IN (
    SELECT run_id, agent_id, step FROM {{db}}.request_digests
    WHERE (run_id, agent_id, step) NOT IN (SELECT run_id, agent_id, step FROM ({_KEPT}))))"""

# Every step's rows by model: kept where they hold, else computed; `kept` says which.
ANSWER_FIGURES = f"""
CREATE OR REPLACE VIEW {{db}}.answer_figures AS
SELECT *, true AS kept FROM ({_KEPT})
UNION ALL
SELECT *, false AS kept FROM ({answers_select(_NOT_KEPT)})
"""

_COLUMNS = ("run_id", "agent_id", "step", "model", "requests", "ok_requests", "answered", "ttft_ms", "ttfa_ms",
            "ttfa_mean_ms", "reasoning_requests", "reasoning_tokens", "reasoning_chunks", "answer_chunks",
            "usage_tokens", "reasoning_ms", "answer_itl_ms", "reasoning_itl_ms", "silent_reasoning", "tool_calls",
            "tool_calls_invalid", "tool_call_ms")
STEP_ANSWERS = f"""
CREATE OR REPLACE VIEW {{db}}.step_answers AS
SELECT {', '.join(_COLUMNS)} FROM {{db}}.answer_figures ORDER BY run_id, agent_id, step, model
"""

# The first request of each model (the earliest first of its steps), and the others' TTFT p50 pooled exactly
# from the rows: every successful request of the model but the first (one sent at the same nanosecond with
# the same TTFT as the first is left out with it).
_FIRSTS = """SELECT run_id, agent_id, model, sum(requests) AS requests,
        argMin((first_start_ns, first_error_class = '', first_ttft_ms, first_request_id, first_error_class),
               (first_start_ns, first_error_class = '', first_ttft_ms)) AS first
    FROM {db}.answer_figures GROUP BY run_id, agent_id, model"""
MODEL_FIRST_REQUESTS = f"""
CREATE OR REPLACE VIEW {{db}}.model_first_requests AS
SELECT f.run_id AS run_id, f.agent_id AS agent_id, f.model AS model, f.requests AS requests,
    f.first.4 AS first_request_id, f.first.5 AS first_error_class, f.first.3 AS first_ttft_ms,
    ifNull(w.ok_requests, 0) - f.first.2 AS warm_requests, w.warm_ttft_p50_ms AS warm_ttft_p50_ms
FROM ({_FIRSTS}) AS f
LEFT JOIN (
    WITH {REQUEST_FIGURES}
    SELECT r.run_id AS run_id, r.agent_id AS agent_id, r.model AS model, countIf(r.error_class = '') AS ok_requests,
        quantileExactIf(0.5)(req_ttft_ms, r.error_class = ''
                             AND (req_start_ns, req_ttft_ms) != (ff.first.1, ff.first.3)) AS warm_ttft_p50_ms
    FROM {{db}}.requests AS r
    INNER JOIN ({_FIRSTS}) AS ff ON r.run_id = ff.run_id AND r.agent_id = ff.agent_id AND r.model = ff.model
    GROUP BY r.run_id, r.agent_id, r.model
) AS w ON w.run_id = f.run_id AND w.agent_id = f.agent_id AND w.model = f.model
ORDER BY run_id, agent_id, model
"""

ANSWER_VIEWS: dict[str, str] = {
    "answer_figures": ANSWER_FIGURES,
    "step_answers": STEP_ANSWERS,
    "model_first_requests": MODEL_FIRST_REQUESTS,
}
