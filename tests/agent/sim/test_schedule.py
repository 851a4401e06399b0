"""The timing schedule as a client sees it: TTFT, ITL, prefill cost, slowdown under concurrency."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import pytest

from siliconbench.agent.sim import SimProfile
from tests.timing import LATE_S

from .conftest import MODEL
from .sse import content_events, read_events

# A late chunk lengthens its own gap and shortens the next one by as much (absolute deadlines), so the
# median gap stays close to the ITL even when single chunks are late; wrong ITLs are >= 10 ms off.
GAP_TOLERANCE_S = 0.003


async def arrivals(client, prompt_tokens: int = 8, max_tokens: int = 30) -> list[float]:
    """Each content chunk's arrival, in seconds since just before the request was sent."""
    t0 = time.perf_counter()
    resp = await client.post("/v1/completions", json={
        "model": MODEL, "prompt": [7] * prompt_tokens, "max_tokens": max_tokens, "stream": True})
    times = [e.t - t0 for e in content_events(await read_events(resp))]
    assert len(times) == max_tokens
    return times


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def assert_on_schedule(observed: list[float], due: float) -> None:
    """Never before `due`, and the median at most LATE_S after it."""
    assert min(observed) >= due, f"{min(observed):.4f} s is earlier than the deadline {due:.4f} s"
    assert statistics.median(observed) < due + LATE_S, f"median {statistics.median(observed):.4f} s, due {due:.4f} s"


async def warm(client) -> None:
    await (await client.get("/health")).read()  # open the pooled connection before timing


@pytest.mark.timing
async def test_ttft_and_itl_match_profile_at_concurrency_1(start_sim):
    client = await start_sim(SimProfile(ttft_ms=60, itl_ms=10))
    await warm(client)
    runs = [await arrivals(client) for _ in range(5)]
    assert_on_schedule([times[0] for times in runs], 0.060)
    assert_on_schedule([times[-1] for times in runs], 0.060 + 29 * 0.010)
    assert abs(statistics.median([g for times in runs for g in gaps(times)]) - 0.010) < GAP_TOLERANCE_S


@pytest.mark.timing
async def test_prefill_cost_grows_ttft_per_prompt_token(start_sim):
    client = await start_sim(SimProfile(ttft_ms=10, ttft_per_prompt_token_ms=0.25, itl_ms=1))
    await warm(client)
    runs = [await arrivals(client, prompt_tokens=400, max_tokens=2) for _ in range(5)]
    # 110 ms: 10 ms without the prefill term, 210 ms with it counted twice
    assert_on_schedule([times[0] for times in runs], 0.010 + 400 * 0.00025)


@pytest.mark.timing
async def test_itl_at_concurrency_1_does_not_drift_over_a_long_stream(start_sim):
    client = await start_sim(SimProfile(ttft_ms=5, itl_ms=2))
    await warm(client)
    runs = [await arrivals(client, max_tokens=500) for _ in range(3)]  # one at a time: a loaded client keeps up
    # absolute deadlines: the last chunk lands at ttft + 499 * itl, however late single wake-ups were;
    # sleeping one ITL after each chunk instead would add every wake-up's lateness (>= 0.1 ms x 499)
    assert_on_schedule([times[-1] for times in runs], 0.005 + 499 * 0.002)


@pytest.mark.timing
async def test_slowdown_stretches_itl_when_four_streams_run(start_sim):
    client = await start_sim(SimProfile(ttft_ms=20, itl_ms=10, slowdown_per_stream=1.0))
    await warm(client)
    alone = gaps(await arrivals(client, max_tokens=10))
    together = [g for times in await asyncio.gather(*(arrivals(client) for _ in range(4))) for g in gaps(times)]
    assert abs(statistics.median(alone) - 0.010) < GAP_TOLERANCE_S
    # 40 ms: 10 ms without the slowdown, 50 ms with it counting all four streams instead of the other three
    assert abs(statistics.median(together) - 0.010 * (1 + 1.0 * 3)) < 2 * GAP_TOLERANCE_S


@pytest.mark.timing
async def test_zero_ttft_and_itl_stream_as_fast_as_possible(start_sim):
    client = await start_sim(SimProfile(ttft_ms=0, itl_ms=0))
    await warm(client)
    times = await arrivals(client, max_tokens=2000)
    # waiting on the timer at all would cost >= 1 ms a chunk, 2 s in all; reading 2,000 events takes
    # ~0.1 s on an idle machine, and a loaded one does not make that ten times slower
    assert times[-1] < 1.0


async def test_ping_comment_every_n_chunks_between_content(start_sim):
    client = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, ping_every_chunks=2))
    events = await read_events(await client.post("/v1/completions", json={
        "model": MODEL, "prompt": "a", "max_tokens": 5, "stream": True}))
    kinds = ["ping" if e.comment is not None else ("done" if e.data == "[DONE]" else "chunk") for e in events]
    assert kinds == ["chunk", "chunk", "ping", "chunk", "chunk", "ping", "chunk", "done"]
    assert all(e.comment == "ping" for e in events if e.comment is not None)
