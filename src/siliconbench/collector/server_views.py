"""The server's own figures per step, from vLLM's `/metrics` as the agent stored them (server_metrics: each
series' value at the step's start and end): counters as deltas, histograms as the delta of their sum ÷
the delta of their count (a mean; the bucket edges are too coarse for percentiles).

  server_requests    requests vLLM finished (vllm:request_success_total, every finished_reason)
  server_tokens_in   prompt tokens it processed (vllm:prompt_tokens_total)
  server_tokens_out  tokens it generated (vllm:generation_tokens_total)
  server_ttft_mean_ms, server_itl_mean_ms, server_tpot_mean_ms, server_e2e_mean_ms
                     its TTFT, inter-token latency, time per output token and E2E request latency histograms
  prefix_cache_hit_rate  prompt tokens found in the prefix cache ÷ looked up

The names are the ones vLLM 0.32 exposes (tests/fixtures/vllm-0.32-metrics.txt holds each of them)."""

from __future__ import annotations

REQUESTS, PROMPT_TOKENS, GENERATION_TOKENS = (
    "vllm:request_success_total", "vllm:prompt_tokens_total", "vllm:generation_tokens_total")
CACHE_QUERIES, CACHE_HITS = "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total"
# column -> the histogram whose mean it is, in ms
HISTOGRAMS = {
    "server_ttft_mean_ms": "vllm:time_to_first_token_seconds",
    "server_itl_mean_ms": "vllm:inter_token_latency_seconds",
    "server_tpot_mean_ms": "vllm:request_time_per_output_token_seconds",
    "server_e2e_mean_ms": "vllm:e2e_request_latency_seconds",
}
# Every series name the view reads.
READ_NAMES = (REQUESTS, PROMPT_TOKENS, GENERATION_TOKENS, CACHE_QUERIES, CACHE_HITS,
              *(f"{h}_{part}" for h in HISTOGRAMS.values() for part in ("sum", "count")))
# The view's figures, as step_results and sweep_results carry them.
COLUMNS = ("server_requests", "server_tokens_in", "server_tokens_out", *HISTOGRAMS)


def _mean_ms(column: str, histogram: str) -> str:
    return (f"sumIf(delta, name = '{histogram}_sum') * 1e3 / nullIf(sumIf(delta, name = '{histogram}_count'), 0) "
            f"AS {column}")


def server_select(where: str) -> str:
    """Per step (of `where`): the server's own figures over it."""
    return f"""
WITH end_value - start_value AS delta
SELECT run_id, agent_id, step,
    countIf(name = '{GENERATION_TOKENS}') > 0 AS has_server_tokens,
    if(countIf(name = '{REQUESTS}') > 0, sumIf(delta, name = '{REQUESTS}'), NULL) AS server_requests,
    if(countIf(name = '{PROMPT_TOKENS}') > 0, sumIf(delta, name = '{PROMPT_TOKENS}'), NULL) AS server_tokens_in,
    sumIf(delta, name = '{GENERATION_TOKENS}') AS server_tokens_out,
    {(',' + chr(10) + '    ').join(_mean_ms(c, h) for c, h in HISTOGRAMS.items())},
    sumIf(delta, name = '{CACHE_HITS}') / nullIf(sumIf(delta, name = '{CACHE_QUERIES}'), 0) AS prefix_cache_hit_rate
FROM {{db}}.server_metrics
WHERE {where}
GROUP BY run_id, agent_id, step"""


STEP_SERVER = f"CREATE OR REPLACE VIEW {{db}}.step_server AS {server_select('1')}"
