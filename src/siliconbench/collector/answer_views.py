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
from siliconbench.collector.views import QUANTILES

_Q = ", ".join(str(q) for q in QUANTILES)

STEP_ANSWERS = f"""
CREATE OR REPLACE VIEW {{db}}.step_answers AS
WITH {REQUEST_FIGURES}, error_class = '' AS ok
SELECT run_id, agent_id, step, model,
    count() AS requests, countIf(ok) AS ok_requests, countIf(ok AND req_has_answer) AS answered,
    quantilesExactIf({_Q})(req_ttft_ms, ok) AS ttft_ms,
    quantilesExactIf({_Q})(req_ttfa_ms, ok AND req_has_answer) AS ttfa_ms,
    avgIf(req_ttfa_ms, ok AND req_has_answer) AS ttfa_mean_ms,
    countIf(ok AND req_reasoning_chunks > 0) AS reasoning_requests,
    sumIf(req_reasoning_tokens, ok) AS reasoning_tokens,
    sumIf(req_reasoning_chunks, ok) AS reasoning_chunks,
    sumIf(req_answer_chunks, ok) AS answer_chunks,
    sumIf(output_tokens, ok) AS usage_tokens,
    quantilesExactIf({_Q})(req_reasoning_ms, ok AND req_reasoning_chunks > 0) AS reasoning_ms,
    quantilesExactArrayIf({_Q})(req_answer_gap_ms, ok) AS answer_itl_ms,
    quantilesExactArrayIf({_Q})(req_reasoning_gap_ms, ok) AS reasoning_itl_ms,
    countIf(ok AND req_silent_reasoning) AS silent_reasoning,
    sumIf(tool_calls, ok) AS tool_calls, sumIf(tool_calls_invalid, ok) AS tool_calls_invalid,
    quantilesExactIf({_Q})(req_tool_call_ms, ok AND first_tool_call_ns > 0) AS tool_call_ms
FROM {{db}}.requests
GROUP BY run_id, agent_id, step, model
ORDER BY run_id, agent_id, step, model
"""

MODEL_FIRST_REQUESTS = f"""
CREATE OR REPLACE VIEW {{db}}.model_first_requests AS
WITH {REQUEST_FIGURES},
     arrayPopFront(arraySort(groupArray((req_start_ns, error_class = '', req_ttft_ms)))) AS later
SELECT run_id, agent_id, model, count() AS requests,
    argMin(request_id, req_start_ns) AS first_request_id,
    argMin(error_class, req_start_ns) AS first_error_class,
    argMin(req_ttft_ms, req_start_ns) AS first_ttft_ms,
    arrayCount(x -> x.2, later) AS warm_requests,
    arrayReduce('quantileExact(0.5)', arrayMap(x -> x.3, arrayFilter(x -> x.2, later))) AS warm_ttft_p50_ms
FROM {{db}}.requests
GROUP BY run_id, agent_id, model
ORDER BY run_id, agent_id, model
"""

ANSWER_VIEWS: dict[str, str] = {
    "step_answers": STEP_ANSWERS,
    "model_first_requests": MODEL_FIRST_REQUESTS,
}
