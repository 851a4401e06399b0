"""`search` end to end against the simulator over loopback, its true boundary known in closed form: for
concurrency, the ITL each stream in flight stretches (SimProfile.steady_itl_ms); for rate, what the
slots finish. The boundaries are steep (15 ms of ITL per stream) and the SLOs medians, so a loaded
machine's late wake-ups cannot move the answer; the method's accuracy over many seeds and tail SLOs is
tested without wall-clock time (test_method.py)."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from siliconbench.agent.app import build_prompts
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.search.method import Answer, Measured, Search, SearchOptions
from siliconbench.agent.search.probe import ProbeSink, StepProber
from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.server import create_app
from siliconbench.agent.target import inspect_target
from siliconbench.core.plan import Plan
from siliconbench.core.slo import parse_slos
from tests.agent.load.test_step import ListSink

# each stream in flight stretches every gap by half the 30 ms ITL: 60 ms at 3 streams, 75 ms at 4
STRETCH = SimProfile(ttft_ms=10, itl_ms=30, slowdown_per_stream=0.5)
# 4 slots, each request 10 + 3 x 40 = 130 ms of service: past 4 streams requests queue
KNEE = SimProfile(ttft_ms=10, itl_ms=40, slots=4)
OUTPUT_TOKENS = 4
SLO = "ttft_p50_ms<=30"  # 10 ms while the slots keep up


def closed_form_concurrency(limit_ms: float) -> int:
    return max(c for c in range(1, 64) if STRETCH.steady_itl_ms(c) <= limit_ms)


def closed_form_rate() -> float:
    """Requests/s the slots finish: constant arrivals past it queue without end."""
    service_ms = KNEE.steady_ttft_ms(1, 16, OUTPUT_TOKENS) + (OUTPUT_TOKENS - 1) * KNEE.itl_ms
    return KNEE.slots / service_ms * 1000


async def search(url: str, options: SearchOptions, seed: int, slo: str = SLO) -> tuple[Answer, ListSink]:
    plan = Plan(concurrency=(int(options.max),), input_tokens=16, output_tokens=OUTPUT_TOKENS, repetitions=1,
                warmup_requests=2, workers=1, arrival="constant", seed=seed)
    sink = ListSink()
    probe_sink = ProbeSink(sink)
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, url, None)
        prompts = await build_prompts(session, target, plan)
        generator = LoadGenerator(plan, target, prompts, probe_sink, "run1", show_progress=False)
        await generator.start()
        prober = StepProber(generator, probe_sink, session, plan, options.control, target.base_url)

        async def probe(value: float, requests: int, index: int) -> Measured:
            # the simulator shares this process's event loop on a shared machine: the loop-lag verdict
            # speaks of the test machine here (the search's stop on it is tested on its own)
            return dataclasses.replace(await prober(value, requests, index), client_saturated="")

        search = Search(parse_slos(slo), options, probe, output_tokens=OUTPUT_TOKENS)
        try:
            answer = await search.run()
        finally:
            await generator.close()
    return answer, sink


@pytest.fixture
async def start_url():
    servers = []

    async def start(profile: SimProfile) -> str:
        server = TestServer(create_app(profile))
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


@pytest.mark.timing
@pytest.mark.parametrize("seed", [1, 2])
async def test_concurrency_search_finds_the_closed_form_boundary(start_url, seed):
    truth = closed_form_concurrency(67)
    assert truth == 3
    options = SearchOptions(start=2, max=8, verify_factor=2, min_requests=8)
    answer, sink = await search(await start_url(STRETCH), options, seed, "itl_p50_ms<=67")
    assert answer.verified and answer.boundary == truth
    assert answer.binding().objective.key == "itl_p50_ms"
    # every probe is an ordinary step of the run, numbered in order
    assert [s.step for s in sink.steps] == list(range(len(sink.steps)))
    assert sum(p.steps for p in answer.probes) == len(sink.steps)


@pytest.mark.timing
@pytest.mark.parametrize("seed", [1, 2])
async def test_rate_search_finds_the_rate_the_slots_can_finish(start_url, seed):
    truth = closed_form_rate()  # 30.8 requests/s
    options = SearchOptions(control="rate", start=16, max=64, verify_factor=2)
    answer, _ = await search(await start_url(KNEE), options, seed)
    assert answer.verified
    assert truth * (1 - options.tolerance) <= answer.boundary <= truth * (1 + options.tolerance)
