"""vLLM's Prometheus `/metrics`, scraped at the start and the end of each step (DESIGN §2), so reports can
set the server's own counters and histograms beside the client's figures.

The page is read by prometheus-client's own parser (the library vLLM writes it with). Whatever the target
answers costs at most that step's server metrics, with one warning: an HTTP error, a failed or slow read, a
body past MAX_METRICS_BYTES (never read further), text the parser refuses or more than MAX_SERIES series.
Bytes that are not UTF-8 are read with replacement characters (and a warning): the series beside them are
still good.
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from siliconbench.core.limits import MAX_TEXT_CHARS, number_fault, text_fault
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

# Series kept (histograms by their _sum/_count only: bucket edges are too coarse for percentiles), by the
# names vLLM 0.32 (V1) exposes (tests/fixtures/vllm-0.32-metrics.txt holds every one of them).
CURRENT_NAMES = frozenset({
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:generation_tokens_total", "vllm:prompt_tokens_total", "vllm:request_success_total",
    "vllm:num_preemptions_total",
    "vllm:time_to_first_token_seconds_sum", "vllm:time_to_first_token_seconds_count",
    "vllm:inter_token_latency_seconds_sum", "vllm:inter_token_latency_seconds_count",
    "vllm:request_time_per_output_token_seconds_sum", "vllm:request_time_per_output_token_seconds_count",
    "vllm:e2e_request_latency_seconds_sum", "vllm:e2e_request_latency_seconds_count",
    "vllm:request_queue_time_seconds_sum", "vllm:request_queue_time_seconds_count",
    # prompt tokens looked up in / found in the prefix cache (V1): a step's hit rate is hits ÷ queries
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
})
# The engine's cache configuration, as labels of a constant gauge (one per engine, no model_name): its
# block_size is the unit of prefix reuse (`block_size` below).
CONFIG_NAMES = frozenset({"vllm:cache_config_info"})
# Older servers' names for two of them, scraped too where a server still has them: gpu_cache_usage_perc
# (V0) for kv_cache_usage_perc, time_per_output_token_seconds for request_time_per_output_token_seconds.
OLDER_NAMES = frozenset({
    "vllm:gpu_cache_usage_perc",
    "vllm:time_per_output_token_seconds_sum", "vllm:time_per_output_token_seconds_count",
})
# Exposed only by a server serving LoRA adapters (--enable-lora): a gauge whose labels name the adapters
# running and waiting (running_lora_adapters="a,b") and max_lora, kept as the labels of each step's start and end.
LORA_NAMES = frozenset({"vllm:lora_requests_info"})
WANTED = CURRENT_NAMES | OLDER_NAMES | LORA_NAMES | CONFIG_NAMES
# vLLM's page is ~50 KiB for one model (tests/fixtures/vllm-0.32-metrics.txt); 2 MiB holds forty models'
# worth, and no more is read: an endless body costs one step's metrics, not the agent's memory. The parser
# takes ~0.4 ms a KiB, so it runs on a thread: ~20 ms for vLLM's page, ~1 s at the bound, off the loop.
MAX_METRICS_BYTES = 2 << 20
# Wanted series in one page: vLLM has ~25 per model and engine, so this holds hundreds of engines; a page
# with more is refused rather than stored as server metrics twice a step.
MAX_SERIES = 10_000
_READ_BYTES = 64 * 1024
SCRAPE_TIMEOUT_S = 10

Series = dict[tuple[str, str], float]  # (name, canonical labels) -> value


def parse_metrics(text: str, wanted: frozenset[str] = WANTED) -> Series:
    """The wanted series of a Prometheus text exposition; labels are returned sorted, `k="v"` joined by ','
    with the exposition's escapes. Raises ValueError when the text is not Prometheus text, or holds more
    than MAX_SERIES wanted series."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[(sample.name, _canonical_labels(sample.labels))] = sample.value
                if len(out) > MAX_SERIES:
                    raise ValueError(f"more than {MAX_SERIES} series of the kinds scraped")
    return out


def _canonical_labels(labels: dict[str, str]) -> str:
    return ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


async def scrape(session: aiohttp.ClientSession, base_url: str) -> Series | None:
    """One scrape; None when the target has no usable /metrics (one warning, never raises)."""
    url = f"{base_url}/metrics"
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)) as resp:
            if resp.status != 200:
                log.warning("%s answered HTTP %d: no server metrics for this step", url, resp.status)
                return None
            body = await _read_bounded(resp.content)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("%s failed (%s): no server metrics for this step", url, exc.__class__.__name__)
        return None
    if body is None:
        log.warning("%s sent more than %d MiB: no server metrics for this step", url, MAX_METRICS_BYTES >> 20)
        return None
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        log.warning("%s is not valid UTF-8 (%s at byte %d): read with replacement characters", url, exc.reason,
                    exc.start)
        text = body.decode(errors="replace")
    try:
        return await asyncio.to_thread(parse_metrics, text)
    except ValueError as exc:  # the only error prometheus-client's parser raises for bad text
        log.warning("%s is not Prometheus text (%s): no server metrics for this step", url, str(exc)[:200])
        return None


async def _read_bounded(content: aiohttp.StreamReader) -> bytes | None:
    """The whole body, or None once it passes MAX_METRICS_BYTES (the rest is not read)."""
    parts = []
    size = 0
    while part := await content.read(_READ_BYTES):
        size += len(part)
        if size > MAX_METRICS_BYTES:
            return None
        parts.append(part)
    return b"".join(parts)


_BLOCK_SIZE = re.compile(r'(?:^|,)block_size="(\d+)"')


def block_size(series: Series | None) -> int:
    """The server's KV-cache block size in tokens (vllm:cache_config_info's block_size label); 0 when the
    page does not say."""
    for (name, labels), _ in (series or {}).items():
        if name == "vllm:cache_config_info" and (match := _BLOCK_SIZE.search(labels)):
            return int(match.group(1))
    return 0


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
