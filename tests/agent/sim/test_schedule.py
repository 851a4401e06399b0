"""The timing schedule as a client sees it: TTFT, ITL, prefill cost, slowdown under concurrency."""

from __future__ import annotations

import asyncio
import statistics
import time

from siliconbench.agent.sim import SimProfile

from .conftest import MODEL
from .sse import content_events, read_events

# Medians over several requests, so one descheduled wake-up on a busy test machine cannot fail a test.
TOLERANCE_S = 0.0015
TTFT_TOLERANCE_S = 0.002  # TTFT also holds the loopback HTTP round trip (~0.7 ms in one Python process)


async def timed_stream(client, prompt_tokens: int = 8, max_tokens: int = 30) -> tuple[float, list[float]]:
    """(TTFT, ITL gaps) in seconds, measured from just before the request is sent."""
    t0 = time.perf_counter()
    resp = await client.post("/v1/completions", json={
        "model": MODEL, "prompt": [7] * prompt_tokens, "max_tokens": max_tokens, "stream": True})
    times = [e.t for e in content_events(await read_events(resp))]
    assert len(times) == max_tokens
    return times[0] - t0, [b - a for a, b in zip(times, times[1:])]


async def warm(client) -> None:
    await (await client.get("/health")).read()  # open the pooled connection before timing


async def test_ttft_and_itl_match_profile_at_concurrency_1(start_sim):
    client = await start_sim(SimProfile(ttft_ms=40, itl_ms=10))
    await warm(client)
    ttfts, gaps = [], []
    for _ in range(5):
        ttft, itl = await timed_stream(client)
        ttfts.append(ttft)
        gaps += itl
    assert abs(statistics.median(ttfts) - 0.040) < TTFT_TOLERANCE_S
    assert abs(statistics.median(gaps) - 0.010) < TOLERANCE_S
    assert len(gaps) == 5 * 29


async def test_prefill_cost_grows_ttft_per_prompt_token(start_sim):
    client = await start_sim(SimProfile(ttft_ms=10, ttft_per_prompt_token_ms=0.05, itl_ms=1))
    await warm(client)
    ttfts = [(await timed_stream(client, prompt_tokens=400, max_tokens=2))[0] for _ in range(5)]
    assert abs(statistics.median(ttfts) - (0.010 + 400 * 0.00005)) < TTFT_TOLERANCE_S


async def test_itl_at_concurrency_1_does_not_drift_over_a_long_stream(start_sim):
    client = await start_sim(SimProfile(ttft_ms=5, itl_ms=5))
    await warm(client)
    ttft, gaps = await timed_stream(client, max_tokens=200)
    # absolute deadlines: the last chunk lands at ttft + 199 * itl, however late single wake-ups were
    assert abs(ttft + sum(gaps) - (0.005 + 199 * 0.005)) < TTFT_TOLERANCE_S + TOLERANCE_S


async def test_slowdown_stretches_itl_when_four_streams_run(start_sim):
    client = await start_sim(SimProfile(ttft_ms=20, itl_ms=10, slowdown_per_stream=0.5))
    await warm(client)
    _, alone = await timed_stream(client, max_tokens=10)
    results = await asyncio.gather(*(timed_stream(client, max_tokens=30) for _ in range(4)))
    together = [g for _, gaps in results for g in gaps]
    assert abs(statistics.median(alone) - 0.010) < TOLERANCE_S
    assert abs(statistics.median(together) - 0.010 * (1 + 0.5 * 3)) < 2 * TOLERANCE_S


async def test_zero_ttft_and_itl_stream_as_fast_as_possible(start_sim):
    client = await start_sim(SimProfile(ttft_ms=0, itl_ms=0))
    await warm(client)
    t0 = time.perf_counter()
    ttft, _gaps = await timed_stream(client, max_tokens=2000)
    # a 1 ms timer per chunk would take >= 2 s
    assert time.perf_counter() - t0 < 1.0
    assert ttft < 0.05


async def test_ping_comment_every_n_chunks_between_content(start_sim):
    client = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, ping_every_chunks=2))
    events = await read_events(await client.post("/v1/completions", json={
        "model": MODEL, "prompt": "a", "max_tokens": 5, "stream": True}))
    kinds = ["ping" if e.comment is not None else ("done" if e.data == "[DONE]" else "chunk") for e in events]
    assert kinds == ["chunk", "chunk", "ping", "chunk", "chunk", "ping", "chunk", "done"]
    assert all(e.comment == "ping" for e in events if e.comment is not None)
