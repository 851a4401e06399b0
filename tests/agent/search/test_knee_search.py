"""`search` end to end against the simulator over loopback, its true boundary known in closed form: for
concurrency, the ITL each stream in flight stretches (SimProfile.steady_itl_ms); for rate, what the
slots finish. The boundaries are steep (15 ms of ITL per stream) and the SLOs medians, so a loaded
machine's late wake-ups cannot move the answer; the method's accuracy over many seeds and tail SLOs is
tested without wall-clock time (test_method.py)."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from siliconbench.agent.app import build_prompts, run_plan
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.search.method import Answer
from siliconbench.agent.search.run import SearchRun
from siliconbench.core import verdict
from siliconbench.core.search import SearchOptions, SearchPlan
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


@pytest.fixture(autouse=True)
def loaded_machine(monkeypatch):
    """The simulator shares this process and its event loop on a shared test machine, so the sending
    process's CPU and its dispatch delay carry the simulator's work: the client-limited verdict (which stops
    a search, as test_method.py checks) is set out of reach here."""
    monkeypatch.setattr(verdict, "SENDER_CPU_PCT", math.inf)
    monkeypatch.setattr(verdict, "CLIENT_DELAY_MS", math.inf)


def knee_plan(seed: int, **search) -> Plan:
    return Plan(input_tokens=16, output_tokens=OUTPUT_TOKENS, repetitions=1, warmup_requests=2, workers=1,
                arrival="constant", seed=seed, search=SearchPlan(**search))


async def search(url: str, options: SearchOptions, seed: int, slo: str = SLO) -> tuple[Answer, ListSink]:
    plan = knee_plan(seed, slo=slo, **dataclasses.asdict(options))
    sink = ListSink()
    run = SearchRun(parse_slos(slo), options, plan, "run1")
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, url, None)
        prompts = await build_prompts(session, target, plan)
        generator = LoadGenerator(plan, target, prompts, run.through(sink), "run1", show_progress=False)
        await run.drive(generator, session, target)
    assert run.answer is not None
    return run.answer, sink


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
    # every probe is an ordinary step of the run, numbered in order, tagged with its probe
    assert [s.step for s in sink.steps] == list(range(len(sink.steps)))
    assert sum(p.steps for p in answer.probes) == len(sink.steps)
    assert [s.search_probe.value for s in sink.steps] == [p.value for p in answer.probes for _ in range(p.steps)]


@pytest.mark.timing
@pytest.mark.parametrize("seed", [1, 2])
async def test_rate_search_finds_the_rate_the_slots_can_finish(start_url, seed):
    truth = closed_form_rate()  # 30.8 requests/s
    options = SearchOptions(control="rate", start=16, max=64, verify_factor=2)
    answer, _ = await search(await start_url(KNEE), options, seed)
    assert answer.verified
    assert truth * (1 - options.tolerance) <= answer.boundary <= truth * (1 + options.tolerance)


@pytest.mark.timing
async def test_a_plan_with_a_search_section_searches_as_a_fleet_run_s_node_runs_it(start_url):
    """What `run start --plan` has each selected node do: run_plan drives the plan's search."""
    sink = ListSink()
    node = SimpleNamespace(config=SimpleNamespace(target=await start_url(STRETCH), scenario=""), shipper=sink,
                           runner=SimpleNamespace(run_id="", read_counters_now=lambda: None))
    plan = knee_plan(1, slo="itl_p50_ms<=67", start=2.0, max=8.0, verify_factor=2, min_requests=8)
    assert await run_plan(node, plan, "fleet-run") == "fleet-run"
    start, end = sink.runs
    assert json.loads(start.config_json)["search"]["slo"] == "itl_p50_ms<=67"  # stored with the run
    assert end.search.found and end.search.verified and end.search.boundary == closed_form_concurrency(67)
    assert all(s.search_probe.search_id == "fleet-run" for s in sink.steps)
