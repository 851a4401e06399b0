"""Fleet runs on the agent side: the collector's Start/Cancel commands, executed one run at a time.

Every agent of a fleet run receives the same plan and start time and begins its first step at
that wall-clock instant; it reports where it stands (`RunProgress`) after each step, every
HEARTBEAT_S while it runs (so the collector tells a long step from a node that dropped out), and
when the run ends, was cancelled, or failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable

from siliconbench.agent.load.tally import RunTally
from siliconbench.core.errors import SiliconbenchError
from siliconbench.core.datasets import fleet_dataset_path
from siliconbench.core.plan import Plan, plan_from_mapping
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # the collector reports a running node silent for 30 s (6 heartbeats) as dropped out


class FleetProgress:
    """Where a fleet run stands, as the collector is told it (`RunProgress`): every count read from the run's
    tally when a report goes out (at each step's end, each heartbeat, and when the run ends)."""

    def __init__(self, run_id: str, steps_total: int, report: Callable[[pb.RunProgress], None]) -> None:
        self.tally = RunTally()
        self._report = report
        self._run_id = run_id
        self._steps_total = steps_total

    def step_ended(self) -> None:
        self.send(pb.RUN_STATE_RUNNING)

    def send(self, state: pb.RunState, detail: str = "") -> None:
        tally = self.tally
        last = tally.finished[-1].throughput.output_tps if tally.finished else 0.0  # as the step's report states it
        self._report(pb.RunProgress(run_id=self._run_id, state=state, steps_total=self._steps_total, step=tally.steps,
                                    requests_done=tally.requests, errors=tally.errors, output_tokens_per_s=last,
                                    time_unix_ns=time.time_ns(), detail=detail))


class FleetRunner:
    """Runs the collector's commands on this node. `run_plan(plan, run_id, progress)` does the work."""

    def __init__(self, run_plan, report: Callable[[pb.RunProgress], None], heartbeat_s: float = HEARTBEAT_S) -> None:
        self._run_plan = run_plan
        self._report = report
        self._heartbeat_s = heartbeat_s
        self._task: asyncio.Task | None = None
        self._run_id = ""

    def on_command(self, command: pb.Command) -> None:
        if command.HasField("start"):
            self._start(command.start)
        elif command.HasField("cancel"):
            self._cancel(command.cancel.run_id)

    def _start(self, start: pb.StartCommand) -> None:
        if self._task is not None and not self._task.done():
            log.warning("run %s refused: run %s is still going on this node", start.run_id, self._run_id)
            self._report(pb.RunProgress(run_id=start.run_id, state=pb.RUN_STATE_FAILED, time_unix_ns=time.time_ns(),
                                        detail=f"node busy with run {self._run_id}"))
            return
        try:
            plan = plan_from_mapping(json.loads(start.plan_json), f"run {start.run_id}'s plan")
            if plan.dataset is not None:  # only inside the datasets directory (core/datasets.py)
                plan = dataclasses.replace(plan, dataset=str(fleet_dataset_path(plan.dataset)))
        except (SiliconbenchError, ValueError) as exc:
            log.error("run %s refused: %s", start.run_id, exc)
            self._report(pb.RunProgress(run_id=start.run_id, state=pb.RUN_STATE_FAILED, detail=str(exc)[:500],
                                        time_unix_ns=time.time_ns()))
            return
        self._run_id = start.run_id
        self._task = asyncio.get_running_loop().create_task(self._execute(plan, start))

    def _cancel(self, run_id: str) -> None:
        if self._task is not None and not self._task.done() and run_id == self._run_id:
            log.info("run %s: cancel received", run_id)
            self._task.cancel()

    async def _execute(self, plan: Plan, start: pb.StartCommand) -> None:
        steps = plan.total_steps
        progress = FleetProgress(start.run_id, steps, self._report)
        wait_s = (start.start_at_unix_ns - time.time_ns()) / 1e9
        log.info("run %s: %d steps, starting in %.1f s", start.run_id, steps, max(wait_s, 0.0))
        try:
            progress.send(pb.RUN_STATE_PLANNED)
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            progress.send(pb.RUN_STATE_RUNNING)
            heartbeat = asyncio.get_running_loop().create_task(self._beat(progress))
            try:
                await self._run_plan(plan, start.run_id, progress)
            finally:
                heartbeat.cancel()
        except asyncio.CancelledError:
            progress.send(pb.RUN_STATE_CANCELLED, "cancelled by the collector")
            log.info("run %s cancelled", start.run_id)
            return
        except SiliconbenchError as exc:
            progress.send(pb.RUN_STATE_FAILED, str(exc)[:500])
            log.error("run %s failed: %s", start.run_id, exc)
            return
        progress.send(pb.RUN_STATE_FINISHED)
        log.info("run %s finished", start.run_id)

    async def _beat(self, progress: FleetProgress) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            progress.send(pb.RUN_STATE_RUNNING)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
