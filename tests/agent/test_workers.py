"""Process workers (`workers: N`): a step's load split across worker processes against the simulator on
loopback, records merged into one sink."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import psutil
import pytest

from siliconbench.agent.app import build_prompts
from siliconbench.agent.load.send import UNBOUNDED
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.core.plan import StepSpec
from siliconbench.agent.target import inspect_target
from siliconbench.agent.errors import WorkerCrashed
from siliconbench.agent.workers import apportion, split_step
from siliconbench.core.outcomes import ErrorClass
from tests.agent.load.test_step import ListSink, plan, run_plan


def test_apportion_sums_to_the_total_and_favours_the_first_on_ties():
    assert apportion(5, [1, 1]) == [3, 2]
    assert apportion(32, [3, 2]) == [19, 13]
    assert apportion(0, [1, 1, 1]) == [0, 0, 0]


def test_closed_step_splits_concurrency_evenly_and_requests_in_proportion():
    shares = split_step(StepSpec("closed", 5, 0.0, 32), 3, 0, 7, 100, 2)
    assert [s.concurrency for s in shares] == [3, 2]
    assert [len(s.numbers) for s in shares] == [19, 13]
    assert [n for s in shares for n in s.numbers] == list(range(32))
    assert {s.prompt_base for s in shares} == {100}


def test_a_step_never_has_more_shares_than_requests_in_flight():
    assert len(split_step(StepSpec("closed", 1, 0.0, 32), 0, 0, 0, 0, 4)) == 1
    assert len(split_step(StepSpec("constant", 2, 10.0, 32), 0, 0, 0, 0, 4)) == 2
    assert len(split_step(StepSpec("closed", 8, 0.0, 3), 0, 0, 0, 0, 4)) == 3


def test_open_step_splits_the_rate_with_an_independent_schedule_per_worker():
    poisson = split_step(StepSpec("poisson", 0, 10.0, 30), 2, 0, 7, 0, 2)
    assert [(s.rate_rps, s.concurrency, len(s.numbers)) for s in poisson] == [(5.0, 0, 15), (5.0, 0, 15)]
    assert len({s.seed for s in poisson}) == 2
    constant = split_step(StepSpec("constant", 0, 10.0, 30), 2, 0, 7, 0, 2)
    assert [s.phase_ns for s in constant] == [0, 100_000_000]  # merged: one arrival every 100 ms


def test_duration_bound_step_interleaves_request_numbers():
    shares = split_step(StepSpec("closed", 4, 0.0, 0, 1.0), 0, 0, 0, 0, 2)
    assert [s.numbers for s in shares] == [range(0, UNBOUNDED, 2), range(1, UNBOUNDED, 2)]


def test_a_worker_imports_the_send_path_alone_neither_the_step_orchestration_nor_the_collector_grpc_or_chdb():
    code = ("import sys, siliconbench.agent.workers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('collector', 'grpc', 'chdb') "
            "or m in ('siliconbench.agent.shipper', 'siliconbench.agent.load.step', 'siliconbench.agent.scrape')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_records_from_every_worker_arrive_once_with_the_requested_totals(sim_url):
    sink = await run_plan(sim_url, plan(concurrency=(4,), requests_per_step=20, workers=2))
    assert sorted(r.request_id for r in sink.requests) == sorted(f"run1/0/{i}" for i in range(20))
    assert {(r.error_class, r.output_tokens, r.concurrency) for r in sink.requests} == {("", 6, 4)}
    [step] = sink.steps
    assert (step.requests, step.concurrency) == (20, 4) and step.agent_cpu_pct > 0


async def test_open_loop_step_across_workers_sends_every_request(sim_url):
    sink = await run_plan(sim_url, plan(concurrency=(), rates=(200.0,), requests_per_step=20, workers=2))
    assert len({r.request_id for r in sink.requests}) == 20
    assert {r.error_class for r in sink.requests} == {""}


@pytest.mark.timing
async def test_duration_bound_step_across_workers_stops_sending_at_its_end(sim_url):
    steps = (StepSpec("closed", concurrency=4, duration_s=0.3),)
    sink = await run_plan(sim_url, plan(steps=steps, workers=2))
    assert len(sink.requests) >= 8 and len({r.request_id for r in sink.requests}) == len(sink.requests)
    starts = [r.start_unix_ns for r in sink.requests]
    assert (max(starts) - min(starts)) / 1e9 < 0.35


async def test_steps_after_the_first_keep_ids_unique_and_prompts_fresh(sim_url):
    sink = await run_plan(sim_url, plan(concurrency=(2, 3), requests_per_step=7, workers=2))
    assert len({r.request_id for r in sink.requests}) == 14
    assert [s.requests for s in sink.steps] == [7, 7]


async def test_a_worker_crash_records_its_missing_requests_as_errors_and_stops_the_run(sim_url):
    sink = ListSink()
    killed = []
    add = sink.add

    def add_and_kill_a_worker(item):  # the first record back: kill one worker mid-step
        add(item)
        if not killed:
            victim = psutil.Process().children()[0]
            victim.kill()
            killed.append(victim.pid)

    sink.add = add_and_kill_a_worker
    slow = plan(concurrency=(4, 4), requests_per_step=16, output_tokens=40, workers=2)
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, sim_url, None)
        prompts = await build_prompts(session, target, slow)
        with pytest.raises(WorkerCrashed, match=r"died \(killed by signal 9\)"):
            await LoadGenerator(slow, target, prompts, sink, "run1", show_progress=False).run(session)
    assert len(sink.requests) == 16 and len({r.request_id for r in sink.requests}) == 16
    crashed = [r for r in sink.requests if r.error_class == ErrorClass.WORKER_CRASHED]
    assert crashed and all(f"pid {killed[0]}" in r.error_message for r in crashed)
    [step] = sink.steps  # the step is out, flagged; the run stopped before the next one
    assert step.client_saturated and step.requests == 16
