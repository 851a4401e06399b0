"""What the server will refuse is refused up front (a prompt and output longer than the model's
max_model_len, exit 2), and a step whose every request failed stops the run with the server's message
(exit 4), its records and event stored first."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from siliconbench.agent.app import run_plan
from siliconbench.agent.errors import StepFailed
from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.server import create_app
from siliconbench.core.errors import ConfigError, ExitCode
from siliconbench.core.plan import Plan
from tests.agent.load.test_step import ListSink

CONTEXT_FULL = ("This model's maximum context length is 64 tokens. However, you requested 80 tokens (64 in the "
                "messages, 16 in the completion). Please reduce the length of the messages or completion.")


@pytest.fixture
async def start_url():
    servers = []

    async def start(app: web.Application) -> str:
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


def node(url: str, sink: ListSink) -> SimpleNamespace:
    """What run_plan reads of a node: its target, and a shipper and samplers that only collect."""
    return SimpleNamespace(config=SimpleNamespace(target=url, scenario=""), shipper=sink,
                           runner=SimpleNamespace(run_id="", read_counters_now=lambda: None))


def plan(**kw) -> Plan:
    return Plan(**{**dict(concurrency=(1, 2), requests_per_step=6, input_tokens=64, output_tokens=16, repetitions=1,
                          warmup_requests=2, workers=1), **kw})


async def test_input_and_output_past_max_model_len_are_refused_before_any_request(start_url):
    app = create_app(SimProfile(ttft_ms=1, itl_ms=1, max_model_len=64))
    sink = ListSink()
    with pytest.raises(ConfigError) as refused:
        await run_plan(node(await start_url(app), sink), plan())
    assert refused.value.exit_code == ExitCode.BAD_INPUT == 2
    assert str(refused.value).startswith("64 input + 16 output tokens = 80 is more than ")
    assert "max_model_len 64" in str(refused.value) and "--max-model-len" in str(refused.value)
    assert sink.runs == [] and sink.requests == []


async def test_a_plan_that_fits_exactly_runs(start_url):
    app = create_app(SimProfile(ttft_ms=1, itl_ms=1, max_model_len=80))
    sink = ListSink()
    await run_plan(node(await start_url(app), sink), plan())
    assert len(sink.steps) == 2 and not any(r.error_class for r in sink.requests)


async def test_a_step_whose_every_request_failed_stops_the_run_with_the_servers_message(start_url):
    """The warm-up gets through (a server that refuses it is another error); then every request is refused."""
    served = []

    @web.middleware
    async def refuse_after_warm_up(request, handler):
        if request.path == "/v1/completions" and "warmup" not in request.headers.get("X-Request-Id", ""):
            served.append(request.path)
            return web.json_response({"object": "error", "message": CONTEXT_FULL, "type": "BadRequestError",
                                      "code": 400}, status=400)
        return await handler(request)

    app = create_app(SimProfile(ttft_ms=1, itl_ms=1))
    app.middlewares.append(refuse_after_warm_up)
    sink = ListSink()
    with pytest.raises(StepFailed) as failed:
        await run_plan(node(await start_url(app), sink), plan())
    assert failed.value.exit_code == ExitCode.TARGET == 4
    assert str(failed.value).startswith("every one of the 6 requests of step 0 (concurrency=1) failed; the first: "
                                        "HTTP 400: ")
    assert "maximum context length is 64 tokens" in str(failed.value)
    assert len(sink.steps) == 1 and len(sink.requests) == 6 == len(served)  # stored, and no step after it
    assert sink.runs[-1].outcome == "aborted" and "every one of the 6 requests" in sink.runs[-1].outcome_detail


async def test_a_step_with_one_request_served_goes_on(start_url):
    calls = []

    @web.middleware
    async def refuse_all_but_one(request, handler):
        if request.path == "/v1/completions" and "warmup" not in request.headers.get("X-Request-Id", ""):
            calls.append(1)
            if len(calls) > 1:
                return web.json_response({"object": "error", "message": "busy", "code": 400}, status=400)
        return await handler(request)

    app = create_app(SimProfile(ttft_ms=1, itl_ms=1))
    app.middlewares.append(refuse_all_but_one)
    sink = ListSink()
    await run_plan(node(await start_url(app), sink), plan(concurrency=(1,)))
    assert len(sink.steps) == 1 and sum(1 for r in sink.requests if not r.error_class) == 1
