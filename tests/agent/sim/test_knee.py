"""The simulator's capacity knee: at most `slots` requests generate at once, the rest wait in a queue,
and the closed-loop TTFT and ITL follow from the profile in closed form (what search tests take as the
true SLO boundary)."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from siliconbench.agent.sim import SimProfile
from tests.timing import LATE_S

from .conftest import MODEL
from .sse import content_events, read_events


def test_below_the_slots_ttft_and_itl_are_the_profile_slowed_by_the_streams_running():
    profile = SimProfile(ttft_ms=40, itl_ms=10, slowdown_per_stream=0.5, slots=4)
    assert profile.steady_itl_ms(1) == 10
    assert profile.steady_itl_ms(3) == 10 * (1 + 0.5 * 2)
    assert profile.steady_ttft_ms(3, prompt_tokens=8, output_tokens=5) == 40 * 2


def test_past_the_slots_a_request_waits_on_average_its_share_of_every_slot_s_service():
    profile = SimProfile(ttft_ms=60, itl_ms=20, slots=2)
    # service: 60 + 2 gaps x 20 = 100 ms per request; 2 slots finish one request per 50 ms; 4 clients wait
    # 100 x (4 - 2) / 2 = 100 ms each, then their own 60 ms prefill
    assert profile.steady_ttft_ms(4, prompt_tokens=8, output_tokens=3) == 160
    assert profile.steady_itl_ms(4) == 20  # the waiting ones do not slow the running ones
    assert profile.steady_ttft_ms(2, prompt_tokens=8, output_tokens=3) == 60


def test_slots_and_tokens_per_chunk_count_chunks_not_tokens():
    profile = SimProfile(ttft_ms=10, itl_ms=5, tokens_per_chunk=4, slots=1)
    # 8 tokens are 2 chunks: service 10 + 5 = 15 ms; 3 clients on one slot wait 2 services
    assert profile.steady_ttft_ms(3, prompt_tokens=1, output_tokens=8) == 30 + 10


async def _ttft_s(client) -> float:
    t0 = time.perf_counter()
    resp = await client.post("/v1/completions", json={"model": MODEL, "prompt": [7] * 8, "max_tokens": 3,
                                                      "stream": True})
    return content_events(await read_events(resp))[0].t - t0


async def _closed_loop(client, concurrency: int, per_client: int) -> list[float]:
    """Each client's TTFTs, requests sent back to back; the first round (the ramp) left out."""
    async def one() -> list[float]:
        return [await _ttft_s(client) for _ in range(per_client)]
    rounds = await asyncio.gather(*(one() for _ in range(concurrency)))
    return [t for times in rounds for t in times[1:]]


@pytest.mark.timing
async def test_a_closed_loop_past_the_slots_measures_the_closed_form_mean_ttft(start_sim):
    profile = SimProfile(ttft_ms=60, itl_ms=20, slots=2)
    client = await start_sim(profile)
    await (await client.get("/health")).read()
    ttfts = await _closed_loop(client, 4, per_client=4)
    due = profile.steady_ttft_ms(4, 8, 3) / 1000  # 160 ms; without the queue it would be 60 ms
    assert due - 0.010 <= statistics.mean(ttfts) < due + LATE_S


async def test_metrics_count_the_requests_waiting_for_a_slot(start_sim):
    client = await start_sim(SimProfile(ttft_ms=200, itl_ms=1, slots=1))
    sent = [asyncio.create_task(_ttft_s(client)) for _ in range(3)]
    page = ""
    while "vllm:num_requests_waiting" not in page or _gauge(page, "vllm:num_requests_waiting") < 2:
        page = await (await client.get("/metrics")).text()
        await asyncio.sleep(0.005)
    assert _gauge(page, "vllm:num_requests_running") == 1
    await asyncio.gather(*sent)
    page = await (await client.get("/metrics")).text()
    assert _gauge(page, "vllm:num_requests_waiting") == 0


def _gauge(page: str, name: str) -> float:
    return next(float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(name + "{"))
