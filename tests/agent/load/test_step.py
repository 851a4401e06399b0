"""The load generator's steps against the simulator over loopback, records into a list sink."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from siliconbench.agent.app import build_prompts
from siliconbench.agent.errors import StepFailed, TargetMisconfigured
from siliconbench.agent.load.send import WarmUp, tokens_asked
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.load.tally import RunTally
from siliconbench.core import verdict
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.server import create_app
from siliconbench.agent.target import inspect_target
from siliconbench.core.wire import pb


class ListSink:
    """Each item the load hands on, in a list of its kind."""

    def __init__(self) -> None:
        self.runs, self.steps, self.requests, self.metrics = [], [], [], []
        self.room_checks = 0

    def add(self, item):
        {pb.RunEvent: self.runs, pb.StepEvent: self.steps, pb.RequestRecord: self.requests,
         pb.ServerMetric: self.metrics}[type(item)].append(item)

    async def wait_for_room(self):
        self.room_checks += 1

    def pause_reason(self):
        return None


async def run_plan(url: str, plan: Plan, sink: ListSink | None = None, **options) -> ListSink:
    sink = sink or ListSink()
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, url, None)
        prompts = await build_prompts(session, target, plan)
        await LoadGenerator(plan, target, prompts, sink, "run1", show_progress=False, **options).run(session)
    return sink


def step_lines(caplog) -> list[str]:
    """The line each finished step left (logged: no terminal in tests)."""
    return [r.getMessage() for r in caplog.records if r.name == "siliconbench.agent.load.progress"]


@pytest_asyncio.fixture
async def refusing_url():
    """A vLLM-shaped target that lists its model and tokenizes, but refuses every generation request."""

    @web.middleware
    async def refuse(request, handler):
        if request.path.startswith("/v1/") and request.path != "/v1/models":
            return web.json_response({"object": "error", "message": "ignore_eos: Extra inputs are not permitted",
                                      "type": "BadRequestError", "code": 400}, status=400)
        return await handler(request)

    app = create_app(SimProfile(ttft_ms=5, itl_ms=1))
    app.middlewares.append(refuse)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def plan(**kw) -> Plan:
    base = dict(concurrency=(1, 4), requests_per_step=8, input_tokens=32, output_tokens=6, repetitions=1,
                warmup_requests=2)
    base.update(kw)
    return Plan(**base)


async def test_closed_steps_record_every_request_with_exact_lengths_and_warmup_excluded(sim_url):
    sink = await run_plan(sim_url, plan())
    assert len(sink.requests) == 16  # 2 steps x 8; the 2 warm-up requests are not recorded
    assert {r.error_class for r in sink.requests} == {""}
    assert {(r.prompt_tokens, r.output_tokens, r.finish_reason) for r in sink.requests} == {(32, 6, "length")}
    assert all(len(r.chunk_offset_ns) == 6 and r.ttft_ns >= 5e6 for r in sink.requests)
    assert [(s.step, s.mode, s.concurrency, s.requests) for s in sink.steps] == [(0, "closed", 1, 8), (1, "closed", 4, 8)]
    assert all(r.dispatch_delay_ns >= 0 for r in sink.requests)


async def test_the_runs_tally_counts_each_record_handed_on_once_and_each_step_as_its_event_goes_out(sim_url):
    tally = RunTally()
    ended: list[tuple[int, int]] = []  # (steps finished, step events out) at each step's end
    sink = ListSink()
    await run_plan(sim_url, plan(concurrency=(1, 4)), sink, tally=tally,
                   on_step_end=lambda: ended.append((tally.steps, len(sink.steps))))
    assert ended == [(1, 1), (2, 2)]
    assert [(t.requests, t.errors) for t in tally.finished] == [(8, 0), (8, 0)]
    assert (tally.current, tally.requests) == (None, len(sink.requests))


async def test_a_step_whose_every_request_failed_is_stored_then_stops_the_run(sim_url):
    tally = RunTally()
    sink = ListSink()
    with pytest.raises(StepFailed, match=r"every one of the 8 requests of step 0 \(concurrency=1\) failed; the first: "):
        await run_plan(sim_url, plan(concurrency=(1, 4), extra={"sim_error_after": 2}), sink, tally=tally)
    assert [(t.requests, t.errors) for t in tally.finished] == [(8, 8)] and len(sink.steps) == 1
    assert (tally.current, tally.requests, tally.errors) == (None, len(sink.requests), 8)


@pytest.mark.timing
async def test_the_boundary_hook_runs_just_before_each_step_starts_and_just_after_it_ends(sim_url):
    calls: list[tuple[int, int]] = []  # (called, returned)

    def read_counters() -> None:  # a read that takes 5 ms: the step starts once it has returned
        called = time.time_ns()
        time.sleep(0.005)
        calls.append((called, time.time_ns()))

    sink = await run_plan(sim_url, plan(repetitions=2), on_step_boundary=read_counters)
    assert len(calls) == 2 * len(sink.steps) == 8
    for step, (before, after) in zip(sink.steps, zip(calls[::2], calls[1::2])):
        assert before[1] <= step.start_unix_ns < step.end_unix_ns <= after[0]
        assert step.start_unix_ns - before[1] < 50e6 and after[0] - step.end_unix_ns < 50e6


async def test_each_step_ships_server_metrics_scraped_at_its_start_and_end(sim_url):
    sink = await run_plan(sim_url, plan(concurrency=(2,)))
    generated = [m for m in sink.metrics if m.name == "vllm:generation_tokens_total"]
    assert len(generated) == 1 and generated[0].step == 0
    assert generated[0].end_value - generated[0].start_value == sum(r.output_tokens for r in sink.requests)
    names = {m.name for m in sink.metrics}
    assert {"vllm:num_requests_running", "vllm:time_to_first_token_seconds_sum",
            "vllm:time_to_first_token_seconds_count"} <= names


async def test_open_loop_poisson_step_sends_on_schedule_and_records_dispatch_delay(sim_url):
    sink = await run_plan(sim_url, plan(concurrency=(), rates=(50.0,), requests_per_step=20))
    [step] = sink.steps
    assert (step.mode, step.rate_rps, step.requests) == ("poisson", 50.0, 20)
    assert len(sink.requests) == 20
    delays = [r.dispatch_delay_ns for r in sink.requests]
    assert min(delays) >= 0  # none sent ahead of its time; how late is the machine's, and the report's
    # the times they were due (send time less dispatch delay) follow the seeded schedule, however busy
    # the machine: 19 gaps of a Poisson process at 50/s, 20 ms on average
    due = sorted(r.start_unix_ns - r.dispatch_delay_ns for r in sink.requests)
    assert 0.010 < (due[-1] - due[0]) / 19 / 1e9 < 0.030


async def test_open_loop_cap_makes_waiting_visible_as_dispatch_delay(sim_url):
    steps = (StepSpec("constant", concurrency=1, rate_rps=200.0, requests=10),)
    sink = await run_plan(sim_url, plan(steps=steps))
    # each request takes >= 10 ms but one is due every 5 ms: later ones wait for the single slot
    assert max(r.dispatch_delay_ns for r in sink.requests) > 20e6


@pytest.mark.timing
async def test_duration_bounded_step_stops_sending_after_its_duration(sim_url):
    steps = (StepSpec("closed", concurrency=2, duration_s=0.3),)
    sink = await run_plan(sim_url, plan(steps=steps))
    assert 4 <= len(sink.requests) < 100
    starts = [r.start_unix_ns for r in sink.requests]
    assert (max(starts) - min(starts)) / 1e9 < 0.35


async def test_chat_endpoint_with_calibrated_text_prompts_of_exact_length(sim_url, monkeypatch, tmp_path):
    monkeypatch.setattr("siliconbench.agent.app.PROMPT_CACHE_DIR", tmp_path)
    sink = await run_plan(sim_url, plan(endpoint="chat", concurrency=(2,), requests_per_step=4, input_tokens=40))
    assert {(r.error_class, r.prompt_tokens, r.output_tokens) for r in sink.requests} == {("", 40, 6)}
    assert list(tmp_path.iterdir()), "calibrated prompts are cached per model"


async def test_completions_text_prompts_have_the_exact_length(sim_url, monkeypatch, tmp_path):
    monkeypatch.setattr("siliconbench.agent.app.PROMPT_CACHE_DIR", tmp_path)
    sink = await run_plan(sim_url, plan(token_id_prompts=False, concurrency=(2,), requests_per_step=4))
    assert {(r.error_class, r.prompt_tokens) for r in sink.requests} == {("", 32)}


async def test_requests_that_end_early_are_counted_in_the_steps_line(sim_url, caplog):
    caplog.set_level(logging.INFO, logger="siliconbench.agent.load.progress")
    await run_plan(sim_url, plan(concurrency=(2,), extra={"sim_stop_after": 3}))
    [line] = step_lines(caplog)
    assert " 0 errors" in line and ", 8 ended early" in line


async def test_mid_stream_errors_are_counted_by_class_and_the_step_goes_on(sim_url, caplog):
    caplog.set_level(logging.INFO, logger="siliconbench.agent.load.progress")
    with pytest.raises(StepFailed):  # every request of the step failed: the run stops after it
        await run_plan(sim_url, plan(concurrency=(2, 1), extra={"sim_error_after": 2}))
    assert [", errors: server_error_event=8" in line for line in step_lines(caplog)] == [True]


async def test_dataset_prompts_are_filtered_by_length(sim_url, tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "a short one"}\n{"prompt": "' + "word " * 60 + '"}\n'
                    '{"messages": [{"role": "user", "content": "' + "word " * 30 + '"}]}\n')
    sink = await run_plan(sim_url, plan(concurrency=(1,), requests_per_step=4, dataset=str(data),
                                           dataset_min_tokens=20, dataset_max_tokens=45))
    assert {r.error_class for r in sink.requests} == {""}
    assert len({r.prompt_tokens for r in sink.requests}) == 1


async def test_step_event_carries_self_monitoring(sim_url):
    sink = await run_plan(sim_url, plan(concurrency=(1,)))
    [step] = sink.steps
    assert 0 < step.agent_cpu_pct


class LateRoomSink(ListSink):
    """A sink whose room comes 10 ms after the load asks for it: every request is sent at least that late."""

    async def wait_for_room(self):
        self.room_checks += 1
        await asyncio.sleep(0.01)


@pytest.fixture
def only_dispatch_judges(monkeypatch):
    """The step's verdict from its dispatch delay alone: the machine's own CPU is not the subject."""
    monkeypatch.setattr(verdict, "SENDER_CPU_PCT", math.inf)


async def test_an_uncapped_open_loop_step_sent_late_is_client_limited(sim_url, only_dispatch_judges, caplog):
    caplog.set_level(logging.INFO, logger="siliconbench.agent.load.progress")
    steps = (StepSpec("constant", concurrency=0, rate_rps=50.0, requests=4),)
    sink = await run_plan(sim_url, plan(steps=steps, workers=1), LateRoomSink())
    assert min(r.dispatch_delay_ns for r in sink.requests) >= 10e6
    [step] = sink.steps
    assert step.verdict == "client-limited" and step.client_saturated
    assert step.client_delay_p99_ms >= 10 and step.client_delay_share >= 0.5  # >= 10 ms of a 20 ms interval
    [line] = step_lines(caplog)
    assert "client-limited: dispatch delay p99 " in line
    assert line.endswith("(this step's throughput and latency are not publishable)")


async def test_the_same_lateness_under_a_concurrency_cap_is_the_caps_and_not_the_clients(sim_url, only_dispatch_judges):
    steps = (StepSpec("constant", concurrency=4, rate_rps=50.0, requests=4),)
    sink = await run_plan(sim_url, plan(steps=steps, workers=1), LateRoomSink())
    assert min(r.dispatch_delay_ns for r in sink.requests) >= 10e6
    [step] = sink.steps
    assert step.verdict != "client-limited" and not step.client_saturated and step.client_delay_share == 0


async def test_a_closed_loop_slot_that_sends_late_after_freeing_limits_the_load(sim_url, only_dispatch_judges):
    steps = (StepSpec("closed", concurrency=2, requests=12),)
    sink = await run_plan(sim_url, plan(steps=steps, workers=1), LateRoomSink())
    [step] = sink.steps
    assert step.verdict == "client-limited" and step.client_delay_p99_ms >= 10


async def test_the_ramp_of_each_slot_s_first_send_is_stored_but_not_judged(sim_url, only_dispatch_judges):
    """Every request here is a slot's first: its delay runs from the step's start, not from a freed slot."""
    steps = (StepSpec("closed", concurrency=4, requests=4),)
    sink = await run_plan(sim_url, plan(steps=steps, workers=1), LateRoomSink())
    assert min(r.dispatch_delay_ns for r in sink.requests) >= 10e6   # stored with each record
    [step] = sink.steps
    assert step.verdict != "client-limited" and step.client_delay_p99_ms == 0


async def test_a_late_event_loop_that_still_sent_on_time_is_a_busy_node_not_a_limited_client(sim_url, caplog):
    """The loop is held 10 ms at a time (sleeping, as when other processes take the cores): its lag is far past
    5 ms, but a closed loop's slot sends the moment it frees, so the load is the one asked for."""
    caplog.set_level(logging.INFO, logger="siliconbench.agent.load.progress")
    loop = asyncio.get_running_loop()

    def hold() -> None:
        time.sleep(0.01)
        handle[0] = loop.call_later(0.005, hold)

    handle = [loop.call_later(0.005, hold)]
    try:
        sink = await run_plan(sim_url, plan(concurrency=(2,), requests_per_step=24, output_tokens=8))
    finally:
        handle[0].cancel()
    [step] = sink.steps
    assert step.loop_lag_p99_ms >= 5
    assert step.verdict == "node busy" and not step.client_saturated, (step.client_delay_p99_ms, step.agent_cpu_pct)
    assert step.node_cpu_pct > 0 and step.agent_processes_cpu_pct > 0
    [line] = step_lines(caplog)
    assert "node busy: event-loop lag p99 " in line and "node CPU " in line and "not publishable" not in line


class FullSpoolSink(ListSink):
    """A sink whose spool is full until `room` is set; `waiting` is set once the load generator waits."""

    def __init__(self) -> None:
        super().__init__()
        self.room = asyncio.Event()
        self.waiting = asyncio.Event()

    async def wait_for_room(self):
        self.room_checks += 1
        self.waiting.set()
        await self.room.wait()


async def test_a_full_spool_pauses_the_next_step_until_there_is_room(sim_url):
    sink = FullSpoolSink()
    test_plan = plan(concurrency=(1,))
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, sim_url, None)
        prompts = await build_prompts(session, target, test_plan)
        running = asyncio.create_task(
            LoadGenerator(test_plan, target, prompts, sink, "run1", show_progress=False).run(session))
        await asyncio.wait_for(sink.waiting.wait(), 30)
        assert sink.room_checks == 1 and sink.requests == []  # waiting, nothing sent
        sink.room.set()
        await asyncio.wait_for(running, 10)
    assert len(sink.requests) == 8


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_target_that_refuses_every_warm_up_request_stops_the_run_before_its_first_step(refusing_url, workers):
    with pytest.raises(TargetMisconfigured, match=r"refused all 2 warm-up requests; the first: "
                                                  r"HTTP 400: .*Extra inputs are not permitted"):
        await run_plan(refusing_url, plan(workers=workers))


def test_only_a_warm_up_refused_in_full_stops_the_run():
    WarmUp(requests=4, refused=3, first_refusal="HTTP 429: busy").check()  # one got through
    WarmUp().check()  # no warm-up requests at all: nothing to judge
    with pytest.raises(TargetMisconfigured, match="refused all 3"):
        (WarmUp(requests=1, refused=1, first_refusal="HTTP 404: no such route") + WarmUp(requests=2, refused=2)).check()


def test_a_stream_is_bounded_by_what_its_request_asks_for_extra_included():
    assert tokens_asked(plan()) == 6
    assert tokens_asked(plan(extra={"max_tokens": 500})) == 500
    assert tokens_asked(plan(extra={"max_completion_tokens": 2, "temperature": 1.0})) == 6
