"""vLLM's Prometheus `/metrics`, scraped at the start and the end of each step (DESIGN §2), so reports can
set the server's own counters and histograms beside the client's figures."""

from __future__ import annotations

import logging

import aiohttp

from siliconbench.core.limits import MAX_TEXT_CHARS, number_fault, text_fault
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

# Series kept (histograms by their _sum/_count only: bucket edges are too coarse for percentiles).
# kv_cache_usage_perc is vLLM V1's name; gpu_cache_usage_perc the V0 one - both are scraped.
WANTED = frozenset({
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc", "vllm:generation_tokens_total", "vllm:prompt_tokens_total",
    "vllm:request_success_total", "vllm:num_preemptions_total",
    "vllm:time_to_first_token_seconds_sum", "vllm:time_to_first_token_seconds_count",
    "vllm:inter_token_latency_seconds_sum", "vllm:inter_token_latency_seconds_count",
    "vllm:time_per_output_token_seconds_sum", "vllm:time_per_output_token_seconds_count",
    "vllm:e2e_request_latency_seconds_sum", "vllm:e2e_request_latency_seconds_count",
    "vllm:request_queue_time_seconds_sum", "vllm:request_queue_time_seconds_count",
    # prompt tokens looked up in / found in the prefix cache (V1): a step's hit rate is hits ÷ queries
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
})

Series = dict[tuple[str, str], float]  # (name, canonical labels) -> value


def parse_metrics(text: str, wanted: frozenset[str] = WANTED) -> Series:
    """The wanted series of a Prometheus text exposition; labels are returned sorted, `k="v"` joined by ','."""
    out: Series = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            close = line.rfind("}")
            labels = _canonical_labels(line[brace + 1:close])
            rest = line[close + 1:].split()
        else:
            name, labels, rest = line[:space], "", line[space + 1:].split()
        if name not in wanted or not rest:
            continue
        try:
            out[(name, labels)] = float(rest[0])
        except ValueError:
            continue
    return out


def _canonical_labels(body: str) -> str:
    pairs = []
    i = 0
    n = len(body)
    while i < n:
        eq = body.find("=", i)
        if eq < 0:
            break
        key = body[i:eq].strip().lstrip(",").strip()
        j = eq + 2  # after ="
        value = []
        while j < n and body[j] != '"':
            if body[j] == "\\" and j + 1 < n:
                value.append(body[j:j + 2])
                j += 2
                continue
            value.append(body[j])
            j += 1
        pairs.append(f'{key}="{"".join(value)}"')
        i = j + 1
    return ",".join(sorted(pairs))


async def scrape(session: aiohttp.ClientSession, base_url: str) -> Series | None:
    """One scrape; None when the target has no usable /metrics (logged, never fatal)."""
    try:
        async with session.get(f"{base_url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status != 200:
                log.warning("%s/metrics answered HTTP %d: no server metrics for this step", base_url, resp.status)
                return None
            return parse_metrics(await resp.text())
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("%s/metrics failed (%s): no server metrics for this step", base_url, exc.__class__.__name__)
        return None


def server_metrics(run_id: str, step: int, start: Series | None, end: Series | None) -> list[pb.ServerMetric]:
    """One ServerMetric per series seen at either end of the step (a missing end counts as 0). A series the
    store cannot take (a NaN or infinite value, labels past MAX_TEXT_CHARS or not UTF-8: core/limits.py) is
    dropped with a warning: the collector would refuse the batch holding it, and the good records beside it."""
    start = start or {}
    end = end or {}
    kept = []
    for name, labels in sorted(start.keys() | end.keys()):
        values = start.get((name, labels), 0.0), end.get((name, labels), 0.0)
        fault = _unstorable(labels, values)
        if fault:
            log.warning("server metric %s{%s} of step %d dropped: %s", name, labels[:80], step, fault)
            continue
        kept.append(pb.ServerMetric(run_id=run_id, step=step, name=name, labels=labels,
                                    start_value=values[0], end_value=values[1]))
    return kept


def _unstorable(labels: str, values: tuple[float, float]) -> str | None:
    """Why the store cannot take the series; None when it can."""
    fault = text_fault(labels, MAX_TEXT_CHARS)
    if fault:
        return f"its labels {fault}"
    fault = number_fault(values[0]) or number_fault(values[1])
    return f"its value {fault}" if fault else None
