"""A run's steps as `vllm bench serve` users read them: the result block it prints, and the flat JSON
object it saves (its key names where the metric is the same, then ours). docs/result-json.md maps each key.

Built from the report's own step figures (collector/figures.py StepRow), so the block, the JSON and the
report never disagree."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from siliconbench.collector.figures import Percentiles, StepRow
from siliconbench.collector.rollups import Series

WIDTH = 50
# (vllm's metric key, its title in the block, the name in ours, StepRow's mean and percentiles)
LATENCIES = (("ttft", "Time to First Token", "TTFT", "ttft_mean_ms", "ttft_ms"),
             ("tpot", "Time per Output Token (excl. 1st token)", "TPOT", "tpot_mean_ms", "tpot_ms"),
             ("itl", "Inter-token Latency", "ITL", "itl_mean_ms", "itl_ms"),
             ("e2el", "End-to-end Latency", "E2EL", "e2e_mean_ms", "e2e_ms"))
PERCENTILES = (("median", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))


def step_result(series: Series, step: StepRow, goodput: bool = False) -> dict[str, Any]:
    """One step as one flat object: vllm bench serve's keys first (same metric, same name), then ours.
    `goodput`: the plan has SLOs, so `request_goodput` means something (vllm: only with --goodput)."""
    result: dict[str, Any] = {
        "date": f"{series.started:%Y%m%d-%H%M%S}", "backend": "vllm", "model_id": series.model,
        "num_prompts": step.requests, "request_rate": step.rate_rps if step.mode != "closed" else "inf",
        "max_concurrency": step.concurrency or None, "duration": step.wall_s, "completed": step.ok_requests,
        "failed": step.errors, "total_input_tokens": step.tokens_in, "total_output_tokens": step.tokens_out,
        "request_throughput": step.rps, "output_throughput": step.output_tps,
        "total_token_throughput": step.total_tps,
    }
    if goodput:
        result["request_goodput"] = step.goodput_rps
    for key, _, _, mean, percentiles in LATENCIES:
        result[f"mean_{key}_ms"] = getattr(step, mean)
        shares: Percentiles | None = getattr(step, percentiles)
        for name, q in PERCENTILES:
            result[f"{name}_{key}_ms"] = shares.at(q) if shares is not None else None
    result.update({
        "run_id": step.run_id, "agent_id": step.agent_id, "scenario": series.scenario, "step": step.step,
        "repetition": step.repetition, "mode": step.mode, "target_url": series.target_url,
        "target_version": series.target_version, "simulated": bool(series.simulated),
        "instance_type": series.instance_type, "mean_itl_token_ms": step.itl_token_mean_ms,
        "median_itl_token_ms": step.itl_token_ms.at(0.5) if step.itl_token_ms is not None else None,
        "tokens_per_chunk": step.tokens_per_chunk, "steady_output_throughput": step.steady_output_tps,
        "agent_cpu_pct": step.agent_cpu_pct, "client_saturated": bool(step.client_saturated),
        "prefix_cache_hit_rate": step.prefix_cache_hit_rate,
    })
    return {key: _plain(value) for key, value in result.items()}


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def result_lines(results: Iterable[dict[str, Any]]) -> str:
    """The saved file: one flat object a line (JSON Lines). One step: the file is that one JSON object."""
    return "".join(json.dumps(result) + "\n" for result in results)


def result_block(result: dict[str, Any]) -> str:
    """A step's figures in the block `vllm bench serve` prints, its step named below the title."""
    rate = result["request_rate"]
    load = (f"concurrency {result['max_concurrency']}" if rate == "inf"
            else f"{rate:g} req/s ({result['mode']})" + (f", at most {result['max_concurrency']} in flight"
                                                        if result["max_concurrency"] else ""))
    lines = [f"{' Serving Benchmark Result ':=^{WIDTH}}",
             _row("Step:", f"{result['step'] + 1} ({load}, repetition {result['repetition']})"),
             _row("Target:", f"{result['target_version'] or 'version unknown'}"
                             f"{' (SIMULATED: the figures test the pipeline, not a server)' if result['simulated'] else ''}"),
             _row("Successful requests:", result["completed"]), _row("Failed requests:", result["failed"]),
             _row("Benchmark duration (s):", result["duration"]),
             _row("Total input tokens:", result["total_input_tokens"]),
             _row("Total generated tokens:", result["total_output_tokens"]),
             _row("Request throughput (req/s):", result["request_throughput"]),
             _row("Output token throughput (tok/s):", result["output_throughput"]),
             _row("Total Token throughput (tok/s):", result["total_token_throughput"])]
    if "request_goodput" in result:
        lines.append(_row("Request goodput (req/s):", result["request_goodput"]))
    for key, title, short, _, _ in LATENCIES:
        lines.append(f"{title:-^{WIDTH}}")
        lines += [_row(f"Mean {short} (ms):", result[f"mean_{key}_ms"]),
                  _row(f"Median {short} (ms):", result[f"median_{key}_ms"]),
                  _row(f"P99 {short} (ms):", result[f"p99_{key}_ms"])]
    lines.append("=" * WIDTH)
    return "\n".join(lines) + "\n"


def _row(label: str, value: Any) -> str:
    shown = "-" if value is None else f"{value:<10.2f}" if isinstance(value, float) else f"{value:<10}"
    return f"{label:<40} {shown}".rstrip()
