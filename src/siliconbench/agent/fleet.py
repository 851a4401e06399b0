"""Fleet runs on the agent side: the collector's Start/Cancel commands, executed one run at a time.

Every agent of a fleet run receives the same plan and start time and begins its first step at
that wall-clock instant; it reports where it stands (`RunProgress`) after each step, every
HEARTBEAT_S from the start command on (so the collector tells a long step from a node that dropped
out), and when the run ends, was cancelled, or failed.

Commands carry an id that the agent acknowledges; the collector sends an unacknowledged one again on
the next stream, so a repeat is handled once: a start for a run this node has already started (or
seen cancelled) only gets its ack. A start may carry a lease: the collector renews it in reply to
each progress report, and a node that hears no renewal for the lease's length (cut off from the
collector, or its cancel lost) stops its load by itself and reports why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from siliconbench.agent.load.tally import RunTally
from siliconbench.core.errors import SiliconbenchError
from siliconbench.core.datasets import fleet_dataset_path
from siliconbench.core.plan import Plan, plan_from_mapping
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # the collector reports a running node silent for 30 s (6 heartbeats) as dropped out
CANCELLED_BY_COLLECTOR = "cancelled by the collector"
REMEMBERED_RUNS = 1000  # run ids started or cancelled here, to handle a repeated command once


class FleetProgress:
    """Where a fleet run stands, as the collector is told it (`RunProgress`): every count read from the run's
    tally when a report goes out (at each step's end, each heartbeat, and when the run ends)."""

    def __init__(self, run_id: str, steps_total: int, report: Callable[[pb.RunProgress], None]) -> None:
        self.tally = RunTally()
        self._report = report
        self._run_id = run_id
        self._steps_total = steps_total
        self.state: pb.RunState = pb.RUN_STATE_PLANNED  # the latest state reported, repeated by heartbeats

    def step_ended(self) -> None:
        self.send(pb.RUN_STATE_RUNNING)

    def send(self, state: pb.RunState, detail: str = "") -> None:
        self.state = state
        tally = self.tally
        last = tally.finished[-1].throughput.output_tps if tally.finished else 0.0  # as the step's report states it
        self._report(pb.RunProgress(run_id=self._run_id, state=state, steps_total=self._steps_total, step=tally.steps,
                                    requests_done=tally.requests, errors=tally.errors, output_tokens_per_s=last,
                                    time_unix_ns=time.time_ns(), detail=detail))


class Lease:
    """How long a run may go on without a renewal from the collector."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self._renewed = asyncio.Event()

    def renew(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self._renewed.set()

    async def ended(self) -> None:
        """Returns once `duration_s` passed without a renewal (counted from the start, then from each renewal)."""
        while True:
            self._renewed.clear()
            try:
                await asyncio.wait_for(self._renewed.wait(), self.duration_s)
            except asyncio.TimeoutError:
                return


class FleetRunner:
    """Runs the collector's commands on this node. `run_plan(plan, run_id, progress)` does the work; `ack`
    acknowledges a command by its id."""

    def __init__(self, run_plan, report: Callable[[pb.RunProgress], None], *, heartbeat_s: float = HEARTBEAT_S,
                 ack: Callable[[int], None] | None = None) -> None:
        self._run_plan = run_plan
        self._report = report
        self._ack = ack
        self._heartbeat_s = heartbeat_s
        self._task: asyncio.Task | None = None
        self._watchdog: asyncio.Task | None = None
        self._lease: Lease | None = None
        self._stopped_because = ""  # why the run's own watchdog stopped it (its lease ended)
        self._run_id = ""
        self._seen: OrderedDict[str, None] = OrderedDict()  # run ids started or cancelled here, newest last

    def on_command(self, command: pb.Command) -> None:
        kind = command.WhichOneof("kind")
        if kind == "start":
            self._start(command.start)
        elif kind == "cancel":
            self._cancel(command.cancel.run_id)
        elif kind == "renew":
            self._renew(command.renew)
        if command.id and self._ack is not None:
            self._ack(command.id)

    def _remember(self, run_id: str) -> None:
        self._seen[run_id] = None
        while len(self._seen) > REMEMBERED_RUNS:
            self._seen.popitem(last=False)

    def _start(self, start: pb.StartCommand) -> None:
        if start.run_id in self._seen:
            log.info("run %s: start received again (or after its cancel); nothing to do", start.run_id)
            return
        self._remember(start.run_id)
        if self._task is not None and not self._task.done():
            log.warning("run %s refused: run %s is still going on this node", start.run_id, self._run_id)
            self._report(pb.RunProgress(run_id=start.run_id, state=pb.RUN_STATE_FAILED, time_unix_ns=time.time_ns(),
                                        detail=f"node busy with run {self._run_id}"))
            return
        try:
            plan = plan_from_mapping(json.loads(start.plan_json), f"run {start.run_id}'s plan")
            if plan.dataset is not None:  # only inside the datasets directory (core/datasets.py)
                plan = dataclasses.replace(plan, dataset=str(fleet_dataset_path(plan.dataset)))
            if plan.trace is not None:  # the same rule for a trace file
                plan = dataclasses.replace(plan, trace=dataclasses.replace(
                    plan.trace, file=str(fleet_dataset_path(plan.trace.file))))
        except (SiliconbenchError, ValueError) as exc:
            log.error("run %s refused: %s", start.run_id, exc)
            self._report(pb.RunProgress(run_id=start.run_id, state=pb.RUN_STATE_FAILED, detail=str(exc)[:500],
                                        time_unix_ns=time.time_ns()))
            return
        self._run_id = start.run_id
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._execute(plan, start))
        self._lease, self._stopped_because = None, ""
        if start.lease_s > 0:
            self._lease = Lease(start.lease_s)
            self._watchdog = loop.create_task(self._watch(self._lease, self._task))

    def _cancel(self, run_id: str) -> None:
        self._remember(run_id)  # a start that arrives after its cancel is not run
        if self._task is not None and not self._task.done() and run_id == self._run_id:
            log.info("run %s: cancel received", run_id)
            self._task.cancel(CANCELLED_BY_COLLECTOR)  # the reason reaches the run's end event (agent/app.py)

    def _renew(self, renewal: pb.LeaseRenewal) -> None:
        if self._lease is not None and renewal.run_id == self._run_id and renewal.lease_s > 0:
            self._lease.renew(renewal.lease_s)

    async def _watch(self, lease: Lease, task: asyncio.Task) -> None:
        """Stop the run when its lease ends: this node no longer hears from the collector."""
        await lease.ended()
        if not task.done():
            self._stopped_because = (f"stopped by itself: no lease renewal from the collector for "
                                     f"{lease.duration_s:g} s (cut off from it)")
            log.warning("run %s %s; stopping the load", self._run_id, self._stopped_because)
            task.cancel(self._stopped_because)

    async def _execute(self, plan: Plan, start: pb.StartCommand) -> None:
        steps = plan.total_steps
        progress = FleetProgress(start.run_id, steps, self._report)
        wait_s = (start.start_at_unix_ns - time.time_ns()) / 1e9
        log.info("run %s: %d steps, starting in %.1f s", start.run_id, steps, max(wait_s, 0.0))
        # Beats go from the start command on, so the lease is renewed while the node waits for the start too.
        heartbeat = asyncio.get_running_loop().create_task(self._beat(progress, start.lease_s))
        try:
            progress.send(pb.RUN_STATE_PLANNED)
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            progress.send(pb.RUN_STATE_RUNNING)
            await self._run_plan(plan, start.run_id, progress)
        except asyncio.CancelledError:
            if self._stopped_because:
                progress.send(pb.RUN_STATE_FAILED, self._stopped_because)
            else:
                progress.send(pb.RUN_STATE_CANCELLED, CANCELLED_BY_COLLECTOR)
                log.info("run %s cancelled", start.run_id)
            return
        except SiliconbenchError as exc:
            progress.send(pb.RUN_STATE_FAILED, str(exc)[:500])
            log.error("run %s failed: %s", start.run_id, exc)
            return
        finally:
            heartbeat.cancel()
            if self._watchdog is not None:
                self._watchdog.cancel()
        progress.send(pb.RUN_STATE_FINISHED)
        log.info("run %s finished", start.run_id)

    async def _beat(self, progress: FleetProgress, lease_s: float) -> None:
        """Repeat the latest progress every heartbeat, at least three times per lease."""
        every_s = min(self._heartbeat_s, lease_s / 3) if lease_s > 0 else self._heartbeat_s
        while True:
            await asyncio.sleep(every_s)
            progress.send(progress.state)

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._watchdog) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
