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


def with_id(command: pb.Command, command_id: int) -> pb.Command:
    command.id = command_id
    return command


async def test_a_start_received_again_is_acknowledged_again_and_run_once():
    """The collector sends a command again on each new stream until its ack arrives."""
    reports: list[pb.RunProgress] = []
    acks: list[int] = []
    runs: list[str] = []

    async def instant(plan, run_id, sink):
        runs.append(run_id)

    runner = FleetRunner(instant, report=reports.append, heartbeat_s=60, ack=acks.append)
    await run_to_the_end(runner, reports, with_id(start_command("r4"), 7))
    runner.on_command(with_id(start_command("r4"), 7))  # its ack was lost with the stream
    await runner.close()
    assert runs == ["r4"] and acks == [7, 7]
    assert [r.state for r in reports if r.state == pb.RUN_STATE_FAILED] == []  # not refused as "node busy"


async def test_a_start_that_arrives_after_its_cancel_is_not_run():
    reports: list[pb.RunProgress] = []
    acks: list[int] = []

    async def never(plan, run_id, sink):
        raise AssertionError("must not run")

    runner = FleetRunner(never, report=reports.append, heartbeat_s=60, ack=acks.append)
    runner.on_command(pb.Command(id=2, cancel=pb.CancelCommand(run_id="r5")))
    runner.on_command(with_id(start_command("r5"), 1))
    await runner.close()
    assert acks == [2, 1] and reports == []


def leased(run_id: str, lease_s: float) -> pb.Command:
    command = start_command(run_id)
    command.start.lease_s = lease_s
    return command


async def test_a_node_that_hears_no_renewal_stops_its_load_when_the_lease_ends_and_says_why():
    reports: list[pb.RunProgress] = []
    stopped: list[tuple] = []

    async def endless(plan, run_id, sink):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError as exc:
            stopped.append(exc.args)  # what the run's end event says (agent/app.py)
            raise

    runner = FleetRunner(endless, report=reports.append, heartbeat_s=60)
    await run_to_the_end(runner, reports, leased("r6", 0.2))
    why = "stopped by itself: no lease renewal from the collector for 0.2 s (cut off from it)"
    assert stopped == [(why,)]
    assert (reports[-1].state, reports[-1].detail) == (pb.RUN_STATE_FAILED, why)


async def test_renewals_keep_a_leased_run_going_and_beats_come_at_least_three_times_a_lease():
    reports: list[pb.RunProgress] = []

    def renew(progress: pb.RunProgress) -> None:  # the collector's reply to each progress report
        reports.append(progress)
        runner.on_command(pb.Command(renew=pb.LeaseRenewal(run_id=progress.run_id, lease_s=1.5)))

    async def seven_beats(plan, run_id, sink):  # beats every 0.5 s (a third of the lease; the heartbeat is 60 s)
        while len([r for r in reports if r.state == pb.RUN_STATE_RUNNING]) < 7:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    runner = FleetRunner(seven_beats, report=renew, heartbeat_s=60)
    await run_to_the_end(runner, reports, leased("r7", 1.5))  # over two leases long
    assert reports[-1].state == pb.RUN_STATE_FINISHED
