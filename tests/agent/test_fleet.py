"""FleetRunner: the collector's commands executed on a node, and what it reports while it runs."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from siliconbench.agent.fleet import FleetRunner
from siliconbench.core.wire import pb


def start_command(run_id: str, plan: dict | None = None) -> pb.Command:
    return pb.Command(start=pb.StartCommand(run_id=run_id, plan_json=json.dumps(plan or {"concurrency": [1]}),
                                            start_at_unix_ns=time.time_ns()))


async def run_to_the_end(runner: FleetRunner, reports: list[pb.RunProgress], command: pb.Command) -> None:
    runner.on_command(command)
    deadline = time.monotonic() + 30  # a guard against a hang, not a bound on speed
    while not any(r.state in (pb.RUN_STATE_FINISHED, pb.RUN_STATE_FAILED) for r in reports):
        assert time.monotonic() < deadline, [pb.RunState.Name(r.state) for r in reports]
        await asyncio.sleep(0.01)


@pytest.mark.timing
async def test_a_running_node_sends_heartbeats_until_its_run_ends():
    reports: list[pb.RunProgress] = []

    def running() -> list[pb.RunProgress]:
        return [r for r in reports if r.state == pb.RUN_STATE_RUNNING]

    async def long_step(plan, run_id, sink):
        # a step that lasts until the start and four beats were reported (a plain list: nothing to await)
        while len(running()) < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    runner = FleetRunner(long_step, report=reports.append, heartbeat_s=0.05)
    await run_to_the_end(runner, reports, start_command("r1"))
    states = [pb.RunState.Name(r.state) for r in reports]
    assert states[0] == "RUN_STATE_PLANNED" and states[-1] == "RUN_STATE_FINISHED"
    times = [r.time_unix_ns for r in running()]
    assert times == sorted(times) and len(set(times)) == len(times)
    reports.clear()
    await asyncio.sleep(0.2)
    assert reports == []  # no beats once the run is over


async def test_a_plan_the_node_cannot_run_is_reported_failed_with_the_reason():
    reports: list[pb.RunProgress] = []

    async def never(plan, run_id, sink):
        raise AssertionError("must not run")

    runner = FleetRunner(never, report=reports.append, heartbeat_s=0.05)
    await run_to_the_end(runner, reports, start_command("r2", {"concurrency": [0]}))
    [failed] = reports
    assert failed.state == pb.RUN_STATE_FAILED and "concurrency" in failed.detail


async def test_the_steps_total_counts_rate_steps_and_repetitions():
    reports: list[pb.RunProgress] = []

    async def instant(plan, run_id, sink):
        pass

    runner = FleetRunner(instant, report=reports.append, heartbeat_s=60)
    plan = {"concurrency": [1], "rates": [2, 4], "repetitions": 2}
    await run_to_the_end(runner, reports, start_command("r3", plan))
    assert {r.steps_total for r in reports} == {6}


def record(start_s: float, e2e_s: float, tokens: int, error: str = "") -> pb.RequestRecord:
    return pb.RequestRecord(start_unix_ns=int(start_s * 1e9), e2e_ns=int(e2e_s * 1e9), output_tokens=tokens,
                            error_class=error)


async def test_progress_reports_read_the_runs_tally_the_step_under_way_included():
    reports: list[pb.RunProgress] = []

    async def two_steps(plan, run_id, progress):  # what the load generator does with the run's tally
        step = progress.tally.begin(output_tokens_wanted=100)
        step.add(record(1.0, 2.0, 100))
        step.add(record(2.0, 1.0, 100, "http_500"))
        progress.tally.end()
        progress.step_ended()
        progress.tally.begin(output_tokens_wanted=100).add(record(4.0, 1.0, 100))
        progress.send(pb.RUN_STATE_RUNNING)  # a heartbeat during the second step

    runner = FleetRunner(two_steps, report=reports.append, heartbeat_s=60)
    await run_to_the_end(runner, reports, start_command("r4", {"concurrency": [1, 2], "repetitions": 1}))
    counts = [(pb.RunState.Name(r.state), r.steps_total, r.step, r.requests_done, r.errors, r.output_tokens_per_s)
              for r in reports]
    assert counts == [("RUN_STATE_PLANNED", 2, 0, 0, 0, 0.0), ("RUN_STATE_RUNNING", 2, 0, 0, 0, 0.0),
                      ("RUN_STATE_RUNNING", 2, 1, 2, 1, 50.0),    # 100 tokens over 1.0 s -> 3.0 s
                      ("RUN_STATE_RUNNING", 2, 1, 3, 1, 50.0),
                      ("RUN_STATE_FINISHED", 2, 1, 3, 1, 50.0)]
