"""`workers: auto`: how many processes send the load, when the pool grows, and when the run stops."""

from __future__ import annotations

import logging
import os

import aiohttp
import pytest

from siliconbench.agent import sizing
from siliconbench.agent.app import build_prompts
from siliconbench.agent.errors import AgentSaturated
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.sizing import initial_workers, usable_cores, workers_after_step
from siliconbench.core.errors import ExitCode
from siliconbench.agent.target import inspect_target
from siliconbench.core.plan import Plan, StepSpec
from tests.agent.load.test_step import ListSink, plan, run_plan


def test_usable_cores_are_the_affinity_capped_by_the_cgroup_limit_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")
    assert usable_cores(cpu_max) == 1
    cpu_max.write_text(f"{affinity * 100000 + 1} 100000\n")
    assert usable_cores(cpu_max) == affinity
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == affinity
    assert usable_cores(tmp_path / "absent") == affinity


def test_the_first_step_gets_one_process_per_64_streams_of_the_largest_step_within_the_cores():
    assert initial_workers(Plan(concurrency=(1, 4, 8, 16, 32)), cores=8) == 1
    assert initial_workers(Plan(concurrency=(1, 65)), cores=8) == 2
    assert initial_workers(Plan(concurrency=(256,)), cores=8) == 4
    assert initial_workers(Plan(concurrency=(1024,)), cores=8) == 8
    assert initial_workers(Plan(concurrency=(), rates=(50.0,), max_concurrency=200), cores=8) == 4


def test_an_uncapped_open_loop_plan_starts_with_one_process():
    steps = (StepSpec("poisson", 0, 100.0, 100, 0.0),)
    assert initial_workers(Plan(steps=steps), cores=8) == 1


def test_a_quiet_step_keeps_the_processes():
    assert workers_after_step(2, cores=8, busiest_cpu_pct=sizing.GROW_AT_CPU_PCT, wall_s=10, step=0,
                              label="c") == 2


def test_a_busy_process_grows_the_pool_to_bring_it_to_the_target():
    # 2 processes at 70 % of a core: 4 processes at 35 %
    assert workers_after_step(2, cores=8, busiest_cpu_pct=70.0, wall_s=10, step=0, label="c") == 4


def test_growth_never_passes_the_usable_cores():
    assert workers_after_step(1, cores=2, busiest_cpu_pct=89.0, wall_s=10, step=0, label="c") == 2


def test_a_saturated_process_with_cores_left_grows_instead_of_stopping():
    assert workers_after_step(1, cores=4, busiest_cpu_pct=95.0, wall_s=10, step=0, label="c") == 3


def test_a_step_shorter_than_the_minimum_decides_nothing():
    assert workers_after_step(2, cores=2, busiest_cpu_pct=99.0, wall_s=sizing.MIN_STEP_S / 2, step=0, label="c") == 2
    assert workers_after_step(1, cores=4, busiest_cpu_pct=80.0, wall_s=sizing.MIN_STEP_S / 2, step=0, label="c") == 1


def test_a_saturated_process_with_every_core_sending_stops_the_run_saying_what_to_do():
    with pytest.raises(AgentSaturated) as stop:
        workers_after_step(2, cores=2, busiest_cpu_pct=97.0, wall_s=10, step=3, label="concurrency=256")
    message = str(stop.value)
    assert message.startswith("step 3 (concurrency=256): the agent's busiest sending process used 97% of a core")
    assert "all 2 usable cores" in message and "--workers N" in message
    assert stop.value.exit_code == ExitCode.AGENT_SATURATED == 8


async def test_auto_moves_the_load_from_the_agents_process_to_a_pool_after_a_busy_step(sim_url, monkeypatch,
                                                                                        caplog):
    monkeypatch.setattr(sizing.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(sizing, "CGROUP_CPU_MAX", sizing.Path("/nonexistent"))
    monkeypatch.setattr(sizing, "MIN_STEP_S", 0.0)
    monkeypatch.setattr(sizing, "GROW_AT_CPU_PCT", 0.0)   # every step counts as busy
    monkeypatch.setattr(sizing, "TARGET_CPU_PCT", 1e-6)
    caplog.set_level(logging.INFO, logger="siliconbench.agent.load.step")
    sink = await run_plan(sim_url, plan(concurrency=(2, 2), requests_per_step=6))
    assert [s.requests for s in sink.steps] == [6, 6] and not any(r.error_class for r in sink.requests)
    assert sorted(r.request_id for r in sink.requests) == sorted(f"run1/{s}/{n}" for s in (0, 1) for n in range(6))
    grown = [r.getMessage() for r in caplog.records if "the next steps are sent by" in r.getMessage()]
    assert len(grown) == 1 and "sent by 2 processes (was 1)" in grown[0]


async def test_auto_stops_after_a_saturated_step_with_its_records_and_event_out(sim_url, monkeypatch):
    monkeypatch.setattr(sizing.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(sizing, "MIN_STEP_S", 0.0)
    monkeypatch.setattr(sizing, "SENDER_CPU_PCT", 0.0)  # every step counts as saturated
    two_steps = plan(concurrency=(2, 2), requests_per_step=6)
    sink = ListSink()
    async with aiohttp.ClientSession() as session:
        target = await inspect_target(session, sim_url, None)
        prompts = await build_prompts(session, target, two_steps)
        with pytest.raises(AgentSaturated, match="step 0 "):
            await LoadGenerator(two_steps, target, prompts, sink, "run1", show_progress=False).run(session)
    assert [e.step for e in sink.steps] == [0] and len(sink.requests) == 6


async def test_explicit_workers_never_stop_the_run(sim_url, monkeypatch):
    monkeypatch.setattr(sizing.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(sizing, "MIN_STEP_S", 0.0)
    monkeypatch.setattr(sizing, "SENDER_CPU_PCT", 0.0)
    sink = await run_plan(sim_url, plan(concurrency=(2, 2), requests_per_step=6, workers=1))
    assert len(sink.steps) == 2
