"""The view `step_load`: each step's load as the agent stated it, with its verdict and the evidence it
rests on (steps; core/verdict.py), and as it went out (requests: dispatch delay = send − scheduled; the
achieved send rate = (requests − 1) ÷ (last send − first send); ended_early: successful requests that
returned fewer output tokens than they asked for, tokens_asked the most asked; 0 from older agents). The one read of `requests` a report
makes besides the digests: three small columns, exact percentiles. A step without its `steps` row (cut
short) has has_step = 0 and reads as closed loop, or as 'open' when its concurrency is 0
(collector/points.py). server_cpu_pct is NULL where the server's processes were not on the agent's node.
"""

from __future__ import annotations

# The verdict's evidence and the early ends, as step_results passes them on (collector/figures.py StepRow).
PASSED_ON = ("verdict", "client_delay_p99_ms", "client_delay_share", "agent_processes_cpu_pct", "node_cpu_pct",
             "server_cpu_pct", "ended_early", "tokens_asked")

STEP_LOAD = """
CREATE OR REPLACE VIEW {db}.step_load AS
SELECT run_id, agent_id, step, s.has_step AS has_step, s.mode AS mode, s.rate_rps AS rate_rps,
    s.agent_cpu_pct AS agent_cpu_pct, s.loop_lag_p99_ms AS loop_lag_p99_ms, s.client_saturated AS client_saturated,
    s.verdict AS verdict, s.client_delay_p99_ms AS client_delay_p99_ms, s.client_delay_share AS client_delay_share,
    s.agent_processes_cpu_pct AS agent_processes_cpu_pct, s.node_cpu_pct AS node_cpu_pct,
    s.server_cpu_pct AS server_cpu_pct,
    d.ended_early AS ended_early, d.tokens_asked AS tokens_asked,
    d.dispatch_mean_ms AS dispatch_mean_ms, d.dispatch_p99_ms AS dispatch_p99_ms, d.sent_rps AS sent_rps
FROM (
    SELECT run_id, agent_id, step, avg(dispatch_delay_ns) / 1e6 AS dispatch_mean_ms,
        quantileExact(0.99)(dispatch_delay_ns) / 1e6 AS dispatch_p99_ms,
        (toUnixTimestamp64Nano(max(start_time)) - toUnixTimestamp64Nano(min(start_time))) / 1e9 AS send_span_s,
        if(send_span_s > 0, (count() - 1) / send_span_s, NULL) AS sent_rps,
        countIf(error_class = '' AND output_tokens < max_tokens) AS ended_early, max(max_tokens) AS tokens_asked
    FROM {db}.requests GROUP BY run_id, agent_id, step
) AS d
LEFT JOIN (
    SELECT run_id, agent_id, step, 1 AS has_step, any(mode) AS mode, any(rate_rps) AS rate_rps,
        max(agent_cpu_pct) AS agent_cpu_pct, max(loop_lag_p99_ms) AS loop_lag_p99_ms,
        max(client_saturated) AS client_saturated, any(verdict) AS verdict,
        max(client_delay_p99_ms) AS client_delay_p99_ms, max(client_delay_share) AS client_delay_share,
        max(agent_processes_cpu_pct) AS agent_processes_cpu_pct, max(node_cpu_pct) AS node_cpu_pct,
        if(max(server_cpu_pct) < 0, NULL, max(server_cpu_pct)) AS server_cpu_pct
    FROM {db}.steps GROUP BY run_id, agent_id, step
) AS s USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1
"""
