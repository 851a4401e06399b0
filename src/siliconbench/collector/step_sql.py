"""A step's figures over its request rows, as SQL over any `source` of rows (a table or a parenthesised
subquery): what collector/kept.py computes once and stores when a step's rows are complete, what the
views (collector/views.py, answer_views.py) compute on the fly for a step not kept yet, and what the
SQL views `step_percentiles`, `step_goodput` and `step_steady` compute over every row. One text for
each, so a kept figure and its recomputation are the same SQL.

Goodput's SLO comes in as the bound parameters {ttft_ms:Float64}, ... (core/slo.py GOODPUT_KEYS; inf:
no such SLO), as in formulas.REQUEST_GOOD.
"""

from __future__ import annotations

from siliconbench.collector.formulas import REQUEST_FIGURES, REQUEST_GOOD
from siliconbench.collector.levels import QUANTILES, SPREAD_LEVELS, sql_levels
from siliconbench.collector.schema import digest_select
from siliconbench.core.slo import GOODPUT_KEYS

_Q = sql_levels(QUANTILES)
_L = sql_levels(SPREAD_LEVELS)
KEY = ("run_id", "agent_id", "step")
NO_SLO_ARGS = ", ".join(f"{key} = inf" for key in GOODPUT_KEYS)  # step_figures(...) where goodput is not read

# Exact percentiles (collector/views.py: "Percentiles") with the per-request formulas of collector/formulas.py.
PERCENTILES = f"""quantilesExactIf({_Q})(req_ttft_ms, error_class = '') AS ttft_ms,
    quantilesExactArrayIf({_Q})(req_gap_ms, error_class = '') AS itl_ms,
    quantilesExactArrayIf({_Q})(req_gap_token_ms, error_class = '') AS itl_token_ms,
    quantilesExactIf({_Q})(req_tpot_ms, error_class = '' AND req_has_tpot) AS tpot_ms,
    quantilesExactIf({_Q})(req_e2e_ms, error_class = '') AS e2e_ms"""

GOODPUT = """countIf(good) AS good_requests,
    sumIf(output_tokens, good) AS good_tokens_out,
    sumIf(output_tokens + prompt_tokens, good) AS good_tokens_total"""

# How the requests went out (collector/load_view.py): dispatch delay, the achieved send rate, and the
# successful requests that returned fewer output tokens than they asked for.
DISPATCH = """avg(dispatch_delay_ns) / 1e6 AS dispatch_mean_ms,
    quantileExact(0.99)(dispatch_delay_ns) / 1e6 AS dispatch_p99_ms,
    (toUnixTimestamp64Nano(max(start_time)) - toUnixTimestamp64Nano(min(start_time))) / 1e9 AS send_span_s,
    if(send_span_s > 0, (count() - 1) / send_span_s, NULL) AS sent_rps,
    countIf(error_class = '' AND output_tokens < max_tokens) AS ended_early, max(max_tokens) AS tokens_asked"""

SPREAD_STATES = ("ttft_spread", "ttft_spread_min", "ttft_spread_max", "itl_token_spread", "itl_token_spread_min",
                 "itl_token_spread_max")
# The HTML report's distributions (reports/spread.py) as mergeable states: a sweep point pools its steps'.
SPREAD = f"""quantilesIfState({_L})(req_ttft_ms, error_class = '') AS ttft_spread,
    minIfOrNull(req_ttft_ms, error_class = '') AS ttft_spread_min,
    maxIfOrNull(req_ttft_ms, error_class = '') AS ttft_spread_max,
    quantilesArrayIfState({_L})(req_gap_token_ms, error_class = '') AS itl_token_spread,
    minArrayIfOrNull(req_gap_token_ms, error_class = '') AS itl_token_spread_min,
    maxArrayIfOrNull(req_gap_token_ms, error_class = '') AS itl_token_spread_max"""


ROLLUP_COLUMNS = ("concurrency", "repetition", "requests", "errors", "ok_requests", "counted_requests", "tokens_out",
                  "tokens_in", "wall_s", "ttft_mean_ms", "itl_mean_ms", "itl_token_mean_ms", "tokens_per_chunk",
                  "tpot_mean_ms", "e2e_mean_ms", "output_tps", "total_tps", "rps", "mean_in_flight")


def rollups_over(digests: str) -> str:
    """Per step: means, counts and throughput from `digests` (request_digests rows, or schema.digest_select of
    a step's rows: kept with its results, so both come from the same rows)."""
    return f"""
SELECT run_id, agent_id, step,
    toUInt32(any(concurrency)) AS concurrency, toUInt32(any(repetition)) AS repetition,
    sum(requests) AS requests, sum(errors) AS errors, sum(ok) AS ok_requests, sum(counted) AS counted_requests,
    sum(output_tokens) AS tokens_out, sum(prompt_tokens) AS tokens_in,
    (max(last_end_ns) - min(first_start_ns)) / 1e9 AS wall_s,
    sum(ttft_sum) / nullIf(sum(ok), 0) AS ttft_mean_ms,
    sum(itl_sum) / nullIf(sum(gaps), 0) AS itl_mean_ms,
    sum(itl_token_sum) / nullIf(sum(gaps), 0) AS itl_token_mean_ms,
    sum(gap_tokens) / nullIf(sum(gaps), 0) AS tokens_per_chunk,
    sum(tpot_sum) / nullIf(sum(tpot_n), 0) AS tpot_mean_ms,
    sum(e2e_sum) / nullIf(sum(ok), 0) AS e2e_mean_ms,
    if(wall_s > 0, tokens_out / wall_s, 0) AS output_tps,
    if(wall_s > 0, (tokens_out + tokens_in) / wall_s, 0) AS total_tps,
    if(wall_s > 0, ok_requests / wall_s, 0) AS rps,
    if(wall_s > 0, sum(e2e_sum) / 1e3 / wall_s, NULL) AS mean_in_flight
FROM {digests}
GROUP BY run_id, agent_id, step"""


def steady_select(source: str) -> str:
    """Per step (closed loop): the share of its wall time with all C streams in flight, and the output
    throughput over its steady part (collector/views.py explains the method)."""
    return f"""
    WITH {REQUEST_FIGURES}
    SELECT run_id, agent_id, step, b.full_concurrency_share AS full_concurrency_share, b.steady_s AS steady_s,
        if(b.steady_s > 0, sum(if(error_class = '', arraySum(arrayMap(
            (o, n) -> if(req_start_ns + o BETWEEN b.steady_start_ns AND b.steady_end_ns, n, 0),
            chunk_offset_ns, chunk_tokens)), 0)) / b.steady_s, NULL) AS steady_output_tps
    FROM {source} AS rows
    INNER JOIN (
        SELECT run_id, agent_id, step, any(concurrency) AS c,
            arraySort(arrayConcat(groupArray(toUInt64(req_start_ns) * 2 + 1), groupArray(toUInt64(req_end_ns) * 2)))
                AS events,
            arrayMap(e -> intDiv(e, 2), events) AS times,
            arrayCumSum(arrayMap(e -> if(e % 2 = 1, 1, -1), events)) AS in_flight,
            arraySum(arrayMap((n, d) -> if(n >= c, d, 0), arrayPopBack(in_flight),
                              arrayPopFront(arrayDifference(times)))) / 1e9 AS full_s,
            (arrayMax(times) - arrayMin(times)) / 1e9 AS span_s,
            if(c > 0 AND span_s > 0, full_s / span_s, NULL) AS full_concurrency_share,
            arrayFirstIndex(x -> x >= c, in_flight) AS first_full,
            if(c > 0 AND first_full > 0, times[first_full], NULL) AS steady_start_ns,
            if(c > 0 AND first_full > 0, times[arrayLastIndex(x -> x >= c, in_flight) + 1], NULL) AS steady_end_ns,
            (steady_end_ns - steady_start_ns) / 1e9 AS steady_s
        FROM {source}
        GROUP BY run_id, agent_id, step
    ) AS b USING (run_id, agent_id, step)
    GROUP BY run_id, agent_id, step, b.full_concurrency_share, b.steady_s"""


def steps_select(source: str) -> str:
    """A kept_steps row (schema.KEPT_STEPS) per step of `source`, goodput under the bound SLO."""
    slo = ", ".join(f"{{{key}:Float64}} AS slo_{key}" for key in GOODPUT_KEYS)
    return f"""
    SELECT m.run_id AS run_id, m.agent_id AS agent_id, m.step AS step, m.step_rows AS step_rows,
        now64(9, 'UTC') AS kept_at, m.ttft_ms, m.itl_ms, m.itl_token_ms, m.tpot_ms, m.e2e_ms,
        st.full_concurrency_share, st.steady_s, st.steady_output_tps,
        m.dispatch_mean_ms, m.dispatch_p99_ms, m.sent_rps, m.ended_early, m.tokens_asked, m.session_requests,
        {', '.join(f'm.slo_{key}' for key in GOODPUT_KEYS)},
        m.good_requests, m.good_tokens_out, m.good_tokens_total,
        m.ttft_spread, m.ttft_spread_min, m.ttft_spread_max,
        m.itl_token_spread, m.itl_token_spread_min, m.itl_token_spread_max,
        {', '.join(f'r.{c} AS {c}' for c in ROLLUP_COLUMNS)}
    FROM (
        WITH {REQUEST_FIGURES},
             {REQUEST_GOOD} AS good
        SELECT run_id, agent_id, step, count() AS step_rows,
            {PERCENTILES},
            {DISPATCH},
            countIf(session_id != '') AS session_requests,
            {slo},
            {GOODPUT},
            {SPREAD}
        FROM {source}
        GROUP BY run_id, agent_id, step
    ) AS m
    LEFT JOIN ({steady_select(source)}) AS st USING (run_id, agent_id, step)
    LEFT JOIN ({rollups_over(f"({digest_select(source)})")}) AS r USING (run_id, agent_id, step)
    SETTINGS join_use_nulls = 1"""


def goodput_select(source: str) -> str:
    """Per step of `source`: the requests and tokens that met every SLO bound (formulas.REQUEST_GOOD)."""
    return f"""
    WITH {REQUEST_FIGURES},
         {REQUEST_GOOD} AS good
    SELECT run_id, agent_id, step, {GOODPUT}
    FROM {source}
    GROUP BY run_id, agent_id, step"""


def answers_select(source: str) -> str:
    """A kept_answers row (schema.KEPT_ANSWERS) per step and served model of `source`: what the streams said
    by kind (collector/answer_views.py), and the model's first request in the step."""
    return f"""
    WITH {REQUEST_FIGURES}, error_class = '' AS ok
    SELECT run_id, agent_id, step, model, sum(count()) OVER (PARTITION BY run_id, agent_id, step) AS step_rows,
        now64(9, 'UTC') AS kept_at,
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
        quantilesExactIf({_Q})(req_tool_call_ms, ok AND first_tool_call_ns > 0) AS tool_call_ms,
        min(req_start_ns) AS first_start_ns,
        argMin(request_id, (req_start_ns, ok, req_ttft_ms)) AS first_request_id,
        argMin(error_class, (req_start_ns, ok, req_ttft_ms)) AS first_error_class,
        argMin(req_ttft_ms, (req_start_ns, ok, req_ttft_ms)) AS first_ttft_ms
    FROM {source}
    GROUP BY run_id, agent_id, step, model"""


def no_slo(sql: str) -> str:
    """`sql` with goodput's SLO parameters bound to inf (every successful request counts)."""
    for key in GOODPUT_KEYS:
        sql = sql.replace(f"{{{key}:Float64}}", "inf")
    return sql
