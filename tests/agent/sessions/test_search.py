"""A search over sessions: its probes are steps of sessions, so it finds the largest session concurrency
within the SLOs, judged on the turns. With no think time each session keeps one turn in flight, so the
boundary is the simulator's closed form for streams (tests/agent/search/test_knee_search.py)."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from siliconbench.agent.app import build_prompts
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.search.run import SearchRun
from siliconbench.agent.sim.server import create_app
from siliconbench.agent.target import inspect_target
from siliconbench.core.plan import plan_from_mapping
from siliconbench.core.search import SearchOptions
from siliconbench.core.slo import parse_slos
from tests.agent.load.test_step import ListSink
from tests.agent.search.test_knee_search import STRETCH, closed_form_concurrency, loaded_machine  # noqa: F401

SLO = "itl_p50_ms<=67"


@pytest.mark.timing
async def test_a_search_over_sessions_finds_the_largest_session_concurrency_within_the_slo():
    options = SearchOptions(start=2, max=8, verify_factor=2, min_requests=8)
    plan = plan_from_mapping({"endpoint": "chat", "output_tokens": 4, "repetitions": 1, "warmup_requests": 1,
                              "sessions": {"turns": 2, "first_turn_tokens": 20, "followup_tokens": 10},
                              "search": {"slo": SLO, **dataclasses.asdict(options)}}, "test plan")
    server = TestServer(create_app(STRETCH))
    await server.start_server()
    sink = ListSink()
    run = SearchRun(parse_slos(SLO), options, plan, "run1")
    try:
        async with aiohttp.ClientSession() as session:
            target = await inspect_target(session, str(server.make_url("")).rstrip("/"), None)
            generator = LoadGenerator(plan, target, await build_prompts(session, target, plan),
                                      run.through(sink), "run1", show_progress=False)
            await run.drive(generator, session, target)
    finally:
        await server.close()
    assert run.answer is not None and run.answer.verified
    assert run.answer.boundary == closed_form_concurrency(67)
    assert all(r.session_id and r.turn in (0, 1) for r in sink.requests)
