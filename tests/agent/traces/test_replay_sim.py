"""A trace replayed against the simulator over loopback: what the simulator receives is the trace's shared
prefixes as identical leading blocks of exact length, at the trace's times within the dispatch lag."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.sim import SendLog, SimProfile
from siliconbench.agent.sim.server import create_app
from siliconbench.agent.target import inspect_target
from siliconbench.agent.traces.replay import prepare_trace
from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan
from siliconbench.core.trace import TracePlan
from tests.agent.load.test_step import ListSink

FIXTURES = Path(__file__).parents[2] / "fixtures" / "traces"
# How far a request may arrive from its time beyond its own dispatch lag: loopback and the simulator's own
# handling, on a loaded test machine.
ARRIVAL_SLACK_NS = 250_000_000


@pytest_asyncio.fixture
async def sim():
    log = SendLog()
    server = TestServer(create_app(SimProfile(ttft_ms=2, itl_ms=1, max_model_len=4096), send_log=log))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), log
    await server.close()


async def replay(url: str, trace: TracePlan, **plan) -> ListSink:
    sink = ListSink()
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, url, None)
        ready, book = await prepare_trace(session, target, Plan(trace=trace, repetitions=1, **plan), "seed/run")
        await LoadGenerator(ready, target, book, sink, "run1", show_progress=False).run(session)
    return sink


def mooncake(**options) -> TracePlan:
    return TracePlan(file=str(FIXTURES / "mooncake.jsonl"), format="mooncake", **options)


async def test_shared_hash_ids_arrive_as_identical_leading_blocks_of_exact_length(sim):
    url, log = sim
    sink = await replay(url, mooncake())
    rows = [json.loads(line) for line in (FIXTURES / "mooncake.jsonl").read_text().splitlines()]
    received = {r.x_request_id: r.prompt_ids for r in log.records}
    prompts = {rec.trace_line: received[rec.request_id] for rec in sink.requests}
    assert [len(prompts[i + 1]) for i in range(12)] == [r["input_length"] for r in rows]
    for a, b in itertools.combinations(range(12), 2):
        ids_a, ids_b = rows[a]["hash_ids"], rows[b]["hash_ids"]
        shared = next((j for j, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
        common = min(shared * 512, rows[a]["input_length"], rows[b]["input_length"])
        assert prompts[a + 1][:common] == prompts[b + 1][:common], (a, b)
        assert prompts[a + 1][common:common + 16] != prompts[b + 1][common:common + 16], (a, b)


@pytest.mark.timing
async def test_requests_arrive_at_the_traces_times_within_their_dispatch_lag(sim):
    url, log = sim
    sink = await replay(url, mooncake(time_scale=2.0, rate_scale=2.0))  # the trace's own clock
    arrived = {r.x_request_id: r.arrival_ns for r in log.records}
    records = sorted(sink.requests, key=lambda r: r.trace_offset_ns)
    first = records[0]
    for record in records:
        expected = record.trace_offset_ns - first.trace_offset_ns
        actual = arrived[record.request_id] - arrived[first.request_id]
        assert abs(actual - expected) <= record.dispatch_delay_ns + first.dispatch_delay_ns + ARRIVAL_SLACK_NS
    assert [r.trace_offset_ns for r in records][:3] == [0, 120_000_000, 160_000_000]


async def test_each_request_asks_for_its_rows_output_and_says_the_reuse_it_expects(sim):
    url, _ = sim
    sink = await replay(url, mooncake())
    by_line = {r.trace_line: r for r in sink.requests}
    assert [by_line[i].output_tokens for i in (1, 2, 3)] == [20, 12, 16]
    # line 3 resends line 1's first block (100) of 512 tokens; line 6 resends 100 and 103 of line 3
    assert [by_line[i].expected_cached_tokens for i in (1, 2, 3, 6)] == [0, 0, 512, 1024]
    step = sink.steps[0]
    assert (step.mode, step.trace_format, step.trace_block_size, step.requests) == ("trace", "mooncake", 512, 12)


async def test_a_trace_without_prefix_information_says_so_and_shares_nothing(sim):
    url, log = sim
    sink = await replay(url, TracePlan(file=str(FIXTURES / "azure.csv"), format="azure", time_scale=0.5))
    assert sink.steps[0].trace_block_size == 0
    assert all(r.expected_cached_tokens == 0 for r in sink.requests)
    openings = {tuple(r.prompt_ids[:16]) for r in log.records if r.x_request_id and "/warmup/" not in r.x_request_id}
    assert len(openings) == 8


async def test_lengths_past_the_servers_context_are_refused_before_any_request(sim, tmp_path):
    url, log = sim
    trace = tmp_path / "long.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 100, "output_length": 5}\n'
                     '{"timestamp": 5, "input_length": 4000, "output_length": 200}\n')
    with pytest.raises(ConfigError, match="1 of 2 requests need more than the server's max_model_len of 4096"):
        await replay(url, TracePlan(file=str(trace), format="mooncake"))
    assert not [r for r in log.records if r.endpoint.endswith("completions")]
