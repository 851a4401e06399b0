"""A sessions plan run against the simulator on loopback (prefix caching on, cached tokens in usage), its
records in a list and the simulator's history check beside them."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp.test_utils import TestServer

from siliconbench.agent.app import build_prompts
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.history import HistoryCheck
from siliconbench.agent.sim.server import create_app
from siliconbench.agent.target import inspect_target
from siliconbench.core.plan import Plan, plan_from_mapping
from siliconbench.core.wire import pb
from tests.agent.load.test_step import ListSink

CACHING = SimProfile(ttft_ms=5, itl_ms=1, prefix_caching=True, prompt_tokens_details=True, block_size=16)
SESSIONS = {"turns": 3, "first_turn_tokens": 40, "followup_tokens": 20, "think_time_s": 0.01,
            "system_prompts": [{"tokens": 50, "weight": 1}, {"tokens": 30, "weight": 1}]}


def sessions_plan(steps: list[dict], **changes: object) -> Plan:
    return plan_from_mapping({"endpoint": "chat", "output_tokens": 8, "repetitions": 1, "warmup_requests": 1,
                              "steps": steps, "sessions": SESSIONS, **changes}, "test plan")  # changes may replace sessions


@dataclass
class SessionRun:
    sink: ListSink
    history: HistoryCheck

    @property
    def requests(self) -> list[pb.RequestRecord]:
        return self.sink.requests


async def run_sessions(plan: Plan, profile: SimProfile = CACHING, run_id: str = "run1") -> SessionRun:
    history = HistoryCheck()
    server = TestServer(create_app(profile, history=history))
    await server.start_server()
    sink = ListSink()
    try:
        async with aiohttp.ClientSession() as session:
            target = await inspect_target(session, str(server.make_url("")).rstrip("/"), None)
            generator = LoadGenerator(plan, target, await build_prompts(session, target, plan), sink, run_id,
                                      show_progress=False)
            await generator.run(session)
    finally:
        await server.close()
    return SessionRun(sink, history)
