"""A trace replay made ready against its server, before the first request: the trace read and shaped
(siliconbench.agent.traces.load), its lengths checked against the server's max_model_len (GET /v1/models),
the server's KV-cache block size read where it says it (vLLM's `vllm:cache_config_info` on /metrics), token
ids calibrated with the server's /tokenize, and the plan given the trace's one step.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import aiohttp

from siliconbench.agent.target import PROBE_TIMEOUT, TargetInfo, calibrate_prompts
from siliconbench.agent.traces.load import Replay, check_lengths, load_replay
from siliconbench.agent.traces.prompts import TraceBook
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.core.trace import TracePlan

log = logging.getLogger(__name__)

_BLOCK_SIZE = re.compile(rb'vllm:cache_config_info\{[^}]*\bblock_size="(\d+)"')
_METRICS_BYTES = 2 << 20


async def max_model_len(session: aiohttp.ClientSession, target: TargetInfo) -> int:
    """The served model's context length as /v1/models says it (vLLM does); 0 when it does not."""
    try:
        async with session.get(f"{target.base_url}/v1/models", timeout=PROBE_TIMEOUT) as resp:
            cards = (await resp.json(content_type=None)).get("data", [])
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
        return 0
    for card in cards if isinstance(cards, list) else []:
        if isinstance(card, dict) and card.get("id") == target.model and type(card.get("max_model_len")) is int:
            return int(card["max_model_len"])
    return 0


async def server_block_size(session: aiohttp.ClientSession, base_url: str) -> int:
    """The server's KV-cache block size from vLLM's cache_config_info gauge; 0 when it does not say."""
    try:
        async with session.get(f"{base_url}/metrics", timeout=PROBE_TIMEOUT) as resp:
            page = await resp.content.read(_METRICS_BYTES)
    except (aiohttp.ClientError, TimeoutError):
        return 0
    match = _BLOCK_SIZE.search(page)
    return int(match.group(1)) if match else 0


def trace_step(plan: Plan, replay: Replay) -> Plan:
    """`plan` with its trace's step: every request of the replay at its own time, from one process."""
    step = StepSpec(mode="trace", concurrency=0, rate_rps=replay.offered_rps(), requests=len(replay.rows))
    return replace(plan, steps=(step,), workers=1)


async def prepare_trace(session: aiohttp.ClientSession, target: TargetInfo, plan: Plan,
                        key: str) -> tuple[Plan, TraceBook]:
    """The plan with its trace's step, and the trace's prompts (salted by `key`); ConfigError before any
    request when the trace is unusable or asks for more context than the server has."""
    trace = plan.trace
    assert trace is not None
    replay = load_replay(trace)
    check_lengths(replay, await max_model_len(session, target), trace.file)
    block = await server_block_size(session, target.base_url)
    longest = max(max(r.input_tokens for r in replay.rows), trace.block_size, plan.input_tokens)
    ids = (await calibrate_prompts(session, target, longest)).ids
    book = TraceBook(ids, replay, trace.block_size, block, plan.warmup_requests, plan.repetitions,
                     plan.input_tokens)
    book.salted(key)
    log.info("trace %s (%s): %d requests over %.1f s (%.4g/s offered), %s", trace.file, trace.format,
             len(replay.rows), replay.span_s, replay.offered_rps(), prefix_note(replay, trace, block))
    return trace_step(plan, replay), book


def prefix_note(replay: Replay, trace: TracePlan, server_block: int) -> str:
    """What the replay says about shared prefixes, in words."""
    if not replay.has_prefixes:
        return f"no prefix information in a {trace.format} trace: replayed without shared prefixes"
    server = f"the server's block is {server_block} tokens" if server_block else "the server's block size unknown"
    return f"hash ids replayed as shared blocks of {trace.block_size} tokens ({server})"


def step_fields(plan: Plan, book: TraceBook) -> dict:
    """What a trace step's StepEvent says of the trace."""
    trace = plan.trace
    assert trace is not None
    return {"block_size": book.server_block, "trace_format": trace.format,
            "trace_block_size": trace.block_size if book.replay.has_prefixes else 0,
            "trace_time_scale": trace.time_scale, "trace_rate_scale": trace.rate_scale, "trace_window": trace.window}


def start_fields(plan: Plan, book: TraceBook) -> dict:
    """What the run's start event says of the trace."""
    assert plan.trace is not None
    return {"trace_file": plan.trace.file[:1000], "trace_bad_lines": book.replay.skipped}
