"""Views of multi-turn sessions (requests with a session_id): each turn depth's latency and prefix reuse, and
each step's sessions. Created (replaced) with the other views at every start. Per-request figures are
collector/formulas.py's; percentiles exact, as in collector/views.py.

  turn_depths                  per run x node x step x turn (0: a session's first) x agent_kind (the agent graph's
                               node kind; '' for a session's plain turns), over successful turns:
                               TTFT, ITL, E2E percentiles, mean prompt tokens, and prefix reuse: the tokens
                               the client expected the server to have cached (expected_cached_tokens, whole
                               blocks of the step's block_size) against those the server said it served
                               (usage cached_tokens, where it said), and the turns where the two agree within
                               one block
  step_sessions(ttft_ms=, ttfa_ms=, itl_ms=, tpot_ms=, e2e_ms=)  per run x node x step: sessions (a session's sub-agents
                               are part of it: their turns count as its own), turns per session,
                               session duration (first send -> last byte) percentiles, sessions whose every
                               turn met the SLOs (inf: no SLO) and succeeded, and as sessions/s of the step's
                               wall time (session goodput); the expected and reported cached tokens beside the
                               server's /metrics prefix-cache hits over the step (vllm:prefix_cache_hits)
"""

from __future__ import annotations

from siliconbench.collector.formulas import REQUEST_FIGURES, REQUEST_GOOD
from siliconbench.collector.levels import QUANTILES

_Q = ", ".join(str(q) for q in QUANTILES)
_BLOCK = "(SELECT run_id, agent_id, step, max(block_size) AS block_size FROM {db}.steps GROUP BY run_id, agent_id, step)"

def turn_depths_select(where: str) -> str:
    """Per step, turn and agent kind (of `where`, over the run filter collector/step_views.py describes)."""
    return f"""
WITH {REQUEST_FIGURES}, error_class = '' AS ok, ok AND cached_tokens >= 0 AS said
SELECT run_id, agent_id, step, turn, agent_kind,
    count() AS requests, countIf(ok) AS ok_requests,
    quantilesExactIf({_Q})(req_ttft_ms, ok) AS ttft_ms,
    quantilesExactArrayIf({_Q})(req_gap_ms, ok) AS itl_ms,
    quantilesExactIf({_Q})(req_e2e_ms, ok) AS e2e_ms,
    avgIf(prompt_tokens, ok) AS prompt_tokens_mean,
    sumIf(prompt_tokens, ok) AS prompt_tokens_total,
    sumIf(expected_cached_tokens, ok) AS expected_cached,
    countIf(said) AS reported, sumIf(cached_tokens, said) AS cached,
    countIf(said AND abs(cached_tokens - toInt64(expected_cached_tokens)) <= greatest(block_size, 1)) AS within_block,
    block_size
FROM (SELECT * FROM {{db}}.requests WHERE {where} AND session_id != '') AS rq
LEFT JOIN {_BLOCK} AS b USING (run_id, agent_id, step)
GROUP BY run_id, agent_id, step, turn, agent_kind, block_size
ORDER BY run_id, agent_id, step, turn, agent_kind"""

_HITS = """(SELECT run_id, agent_id, step, sum(end_value - start_value) AS server_hits FROM {db}.server_metrics
    WHERE name IN ('vllm:prefix_cache_hits_total', 'vllm:prefix_cache_hits') GROUP BY run_id, agent_id, step)"""

def step_sessions_select(where: str) -> str:
    """Per step (of `where`): its sessions, goodput under the bound SLO."""
    return f"""
SELECT s.run_id AS run_id, s.agent_id AS agent_id, s.step AS step,
    count() AS sessions, avg(session_turns) AS turns_mean, sum(session_turns) AS turns,
    quantilesExact({_Q})((last_ns - first_ns) / 1e6) AS duration_ms,
    countIf(all_good) AS good_sessions,
    (max(last_ns) - min(first_ns)) / 1e9 AS wall_s,
    if(wall_s > 0, good_sessions / wall_s, 0) AS goodput_sps,
    sum(session_expected) AS expected_cached, sum(session_cached) AS cached, any(h.server_hits) AS server_hits
FROM (
    WITH {REQUEST_FIGURES}, {REQUEST_GOOD} AS good
    SELECT run_id, agent_id, step, if(parent_session_id = '', session_id, parent_session_id) AS root,
        count() AS session_turns,
        min(req_start_ns) AS first_ns, max(req_end_ns) AS last_ns, min(good) AS all_good,
        sumIf(expected_cached_tokens, error_class = '') AS session_expected,
        sumIf(cached_tokens, error_class = '' AND cached_tokens >= 0) AS session_cached
    FROM {{db}}.requests WHERE {where} AND session_id != ''
    GROUP BY run_id, agent_id, step, root
) AS s LEFT JOIN {_HITS} AS h ON s.run_id = h.run_id AND s.agent_id = h.agent_id AND s.step = h.step
GROUP BY s.run_id, s.agent_id, s.step
ORDER BY run_id, agent_id, step"""


SESSION_VIEWS: dict[str, str] = {
    "turn_depths": f"CREATE OR REPLACE VIEW {{db}}.turn_depths AS {turn_depths_select('1')}",
    "step_sessions": f"CREATE OR REPLACE VIEW {{db}}.step_sessions AS {step_sessions_select('1')}",
}
