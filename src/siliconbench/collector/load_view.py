"""The view `step_load`: each step's load as the agent stated it, with its verdict and the evidence it
rests on (steps; core/verdict.py), and as it went out (requests: dispatch delay = send − scheduled; the
achieved send rate = (requests − 1) ÷ (last send − first send); ended_early: successful requests that
returned fewer output tokens than they asked for, tokens_asked the most asked; 0 from older agents), read from
the step's kept results or computed from its rows (view step_figures, collector/kept.py). A step without its `steps` row (cut
short) has has_step = 0 and reads as closed loop, or as 'open' when its concurrency is 0
(collector/points.py). server_cpu_pct is NULL where the server's processes were not on the agent's node.
"""

from __future__ import annotations

from siliconbench.collector.step_sql import NO_SLO_ARGS

# The verdict's evidence, as the agent stated it with the step (steps), and how the requests went out
# (from the step's rows: kept results or computed, collector/step_sql.py DISPATCH), as step_results passes
# them on (collector/figures.py StepRow).
STATED = ("verdict", "client_delay_p99_ms", "client_delay_share", "agent_processes_cpu_pct", "node_cpu_pct",
          "server_cpu_pct")
DISPATCHED = ("ended_early", "tokens_asked", "dispatch_mean_ms", "dispatch_p99_ms", "sent_rps")

def stated_select(where: str) -> str:
    """Per step (of `where`): its load and verdict as the agent stated them (`steps`)."""
    return f"""
    SELECT run_id, agent_id, step, 1 AS has_step, any(mode) AS mode, any(rate_rps) AS rate_rps,
        max(agent_cpu_pct) AS agent_cpu_pct, max(loop_lag_p99_ms) AS loop_lag_p99_ms,
        max(client_saturated) AS client_saturated, any(verdict) AS verdict,
        max(client_delay_p99_ms) AS client_delay_p99_ms, max(client_delay_share) AS client_delay_share,
        max(agent_processes_cpu_pct) AS agent_processes_cpu_pct, max(node_cpu_pct) AS node_cpu_pct,
        if(max(server_cpu_pct) < 0, NULL, max(server_cpu_pct)) AS server_cpu_pct
    FROM {{db}}.steps WHERE {where} GROUP BY run_id, agent_id, step"""

STEP_LOAD = f"""
CREATE OR REPLACE VIEW {{db}}.step_load AS
SELECT run_id, agent_id, step, s.has_step AS has_step, s.mode AS mode, s.rate_rps AS rate_rps,
    s.agent_cpu_pct AS agent_cpu_pct, s.loop_lag_p99_ms AS loop_lag_p99_ms, s.client_saturated AS client_saturated,
    {', '.join(f's.{c} AS {c}' for c in STATED)},
    {', '.join(f'd.{c} AS {c}' for c in DISPATCHED)}
FROM (SELECT run_id, agent_id, step, {', '.join(DISPATCHED)} FROM {{db}}.step_figures({NO_SLO_ARGS})) AS d
LEFT JOIN ({stated_select('1')}) AS s USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1
"""
