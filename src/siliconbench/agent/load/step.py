"""A plan's steps, in order, against one target: each step scraped before and after, sent (from this
process or a pool of workers), tallied, judged from the evidence of what the client did to the load
(core/verdict.py), shown as progress, and emitted as its `StepEvent`. See the package docstring for who sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from time import perf_counter_ns

import aiohttp

from siliconbench.agent.errors import StepFailed
from siliconbench.agent.load.progress import PlanProgress, StepProgress
from siliconbench.agent.load.send import Done, Sender, ShareReport, whole_step
from siliconbench.agent.load.sink import RecordSink
from siliconbench.agent.load.tally import RunTally, StepTally
from siliconbench.agent.nodewatch import NodeCpu, NodeWatch
from siliconbench.agent.scrape import block_size, scrape, server_metrics
from siliconbench.agent.sessions.sender import SessionSender
from siliconbench.agent.selfmon import percentile
from siliconbench.agent.sizing import initial_workers, usable_cores, workers_after_step
from siliconbench.agent.target import PromptBook, TargetInfo
from siliconbench.agent.traces.prompts import TraceBook
from siliconbench.agent.traces.replay import step_fields
from siliconbench.agent.workers import WorkerPool
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.core.verdict import CLIENT_LIMITED, OK, Evidence, delay_share
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)


class LoadGenerator:
    """Runs a plan's steps against one target, emits every record to a sink and counts each once in `tally`.
    Sends from this process (`plan.workers == 1`) or from a pool of worker processes
    (`siliconbench.agent.workers`)."""

    def __init__(self, plan: Plan, target: TargetInfo, prompts: PromptBook, sink: RecordSink, run_id: str, *,
                 tally: RunTally | None = None, show_progress: bool = True,
                 on_step_boundary: Callable[[], None] = lambda: None,
                 on_step_end: Callable[[], None] = lambda: None) -> None:
        """`on_step_boundary` is called just before each step starts and just after it ends (the agent reads
        its samplers' energy counters there). The step's start is stamped after it returns and its end
        before it is called, so a hook that returns once it has read brackets the step exactly.
        `on_step_end` is called once a step's event is out and `tally` counts the step as finished."""
        self._plan = plan
        self._tally = tally or RunTally()
        self._on_step_boundary = on_step_boundary
        self._on_step_end = on_step_end
        self._target = target
        self._prompts = prompts
        self._sink = sink
        self._run_id = run_id
        self._show_progress = show_progress
        self._run_progress = PlanProgress(plan.step_specs() * plan.repetitions)
        self._prompt_base = 0  # request k of the next step sends prompt _prompt_base + k
        self._sender: Sender | SessionSender | None = None
        self._pool: WorkerPool | None = None  # when more than one process sends
        self._cores = usable_cores()
        self._workers = plan.workers if plan.workers != "auto" else initial_workers(plan, self._cores)
        if plan.sessions is not None:  # sent from this process (the plan's check): one ledger of the server's cache
            self._workers = 1
        self._watch: NodeWatch | None = None
        self.client_limit = ""  # why the client limited the last step's load (empty: it did not)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Warm-up, then every step of every repetition, in order. `session` serves /metrics scrapes."""
        plan = self._plan
        specs = plan.step_specs()
        try:
            await self.start()
            step = 0
            for repetition in range(plan.repetitions):
                for spec in specs:
                    title = f"step {step + 1}/{plan.total_steps} {spec.label()} rep={repetition}"
                    await self.step(session, spec, step, repetition, title)
                    step += 1
        finally:
            await self.close()

    async def start(self) -> None:
        """Start the senders and warm up; `step` may follow as often as needed, then `close`."""
        self._watch = await asyncio.to_thread(NodeWatch, self._target.base_url)
        await self._start()
        await self._warm_up()

    async def step(self, session: aiohttp.ClientSession, spec: StepSpec, step: int, repetition: int,
                   title: str) -> pb.StepEvent:
        """One step, numbered `step` in the run; with `workers: auto`, the senders resized after it."""
        await self._sink.wait_for_room()  # a full spool pauses the load rather than drop data
        event = await self._step(session, spec, step, repetition, title)
        if self._plan.workers == "auto" and self._plan.sessions is None:
            wall_s = (event.end_unix_ns - event.start_unix_ns) / 1e9
            await self._resize(workers_after_step(self._workers, self._cores, event.agent_cpu_pct,
                                                  wall_s, step, spec.label()), event.agent_cpu_pct)
        return event

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
        if isinstance(self._sender, SessionSender):
            await self._sender.release()
        if self._pool is not None:
            await self._pool.close()

    async def _start(self) -> None:
        plan, target = self._plan, self._target
        if plan.sessions is not None:
            self._sender = SessionSender(plan, target, self._run_id)
            self._sender.gate = self._sink.wait_for_room
            self._sender.start()
            return
        if self._workers == 1:
            self._sender = Sender(plan, target.model, target.base_url, self._prompts, self._run_id)
            self._sender.gate = self._sink.wait_for_room
            self._sender.start()
            return
        self._pool = WorkerPool(self._workers, plan, target.model, target.base_url, self._prompts, self._run_id)
        await self._pool.start()

    async def _resize(self, workers: int, busiest_cpu_pct: float) -> None:
        """`workers: auto`: send the next steps from `workers` processes (never fewer than now)."""
        if workers <= self._workers:
            return
        log.info("run %s: the busiest sending process used %.0f%% of a core; the next steps are sent by %d "
                 "processes (was %d)", self._run_id, busiest_cpu_pct, workers, self._workers)
        self._workers = workers
        if self._pool is not None:
            await self._pool.grow(workers)
            return
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        await self._start()

    async def _warm_up(self) -> None:
        numbers = range(self._plan.warmup_requests)
        if self._pool is not None:
            outcome = await self._pool.warm_up(numbers)
        else:
            outcome = await self._sender.warm_up(numbers)  # type: ignore[union-attr]
        outcome.check()
        self._prompt_base = len(numbers)

    async def _send_step(self, spec: StepSpec, step: int, repetition: int,
                         done: Done) -> list[ShareReport]:
        if self._pool is not None:
            return await self._pool.run_step(spec, step, repetition, self._plan.seed, self._prompt_base, done)
        share = whole_step(spec, step, repetition, self._plan.seed, self._prompt_base)
        return [await self._sender.run(share, perf_counter_ns(), done)]  # type: ignore[union-attr]

    async def _step(self, session: aiohttp.ClientSession, spec: StepSpec, step: int, repetition: int,
                    title: str) -> pb.StepEvent:
        base = self._target.base_url
        before = await scrape(session, base)
        tally = self._tally.begin(self._plan.output_tokens)
        progress = (StepProgress(title, tally, spec.requests, note=self._sink.pause_reason, run=self._run_progress)
                    if self._show_progress
                    else StepProgress(title, tally, 0, _NullStream()))
        count, show, add = tally.add, progress.update, self._sink.add

        def done(record: pb.RequestRecord) -> None:
            count(record)
            show()
            add(record)

        watch = self._watch
        assert watch is not None, "start() first"
        mark = watch.mark()  # outside the boundary hook's bracket, which holds the step exactly
        self._on_step_boundary()
        start_ns = time.time_ns()
        reports = await self._send_step(spec, step, repetition, done)
        end_ns = time.time_ns()
        self._on_step_boundary()
        cpu = watch.between(mark, watch.mark())
        self._prompt_base += max(r.next_number for r in reports)
        after = await scrape(session, base)
        for metric in server_metrics(self._run_id, step, before, after):
            self._sink.add(metric)
        evidence = step_evidence(spec, tally, reports, cpu)
        verdict = evidence.verdict
        event = pb.StepEvent(
            run_id=self._run_id, step=step, concurrency=spec.concurrency, repetition=repetition,
            start_unix_ns=start_ns, end_unix_ns=end_ns, requests=tally.requests, mode=spec.mode,
            rate_rps=spec.rate_rps, agent_cpu_pct=evidence.sender_cpu_pct, loop_lag_p99_ms=evidence.loop_lag_p99_ms,
            client_saturated=verdict == CLIENT_LIMITED, client_delay_p99_ms=evidence.client_delay_p99_ms,
            client_delay_share=evidence.client_delay_share, agent_processes_cpu_pct=cpu.agent_pct,
            node_cpu_pct=cpu.node_pct, server_cpu_pct=-1.0 if cpu.server_pct is None else cpu.server_pct,
            verdict=verdict, block_size=block_size(before))
        self.client_limit = evidence.reasons() if verdict == CLIENT_LIMITED else ""
        if isinstance(self._prompts, TraceBook):
            event.MergeFrom(pb.StepEvent(**step_fields(self._plan, self._prompts)))
        self._sink.add(event)
        self._tally.end()
        self._run_progress.step_ended((end_ns - start_ns) / 1e9, tally.requests)
        self._on_step_end()
        if verdict != OK:
            (log.warning if verdict == CLIENT_LIMITED else log.info)("run %s step %d: %s", self._run_id, step,
                                                                     evidence.sentence())
        progress.finish(_note(tally, event, len(reports), evidence))
        if self._pool is not None:
            self._pool.raise_if_lost()  # after the step's records and event are out
        if tally.requests and tally.errors == tally.requests:
            raise StepFailed(f"every one of the {tally.requests} requests of step {step} ({spec.label()}) failed; "
                             f"the first: {tally.first_error}")
        return event


def step_evidence(spec: StepSpec, tally: StepTally, reports: list[ShareReport], cpu: NodeCpu) -> Evidence:
    """What the step's verdict rests on. The dispatch delay is the client's own except in an open-loop step
    with a concurrency cap (there a request waiting for a slot is the cap's doing); several sending
    processes: the busiest one speaks for the agent, and one that died limits the step."""
    delay_ms = percentile(slot_delays(spec, tally), 0.99) / 1e6
    if spec.open_loop:  # the arrival interval (none to compare with for a one-request trace: share 0)
        typical_ms = 1e3 / spec.rate_rps if spec.rate_rps > 0 else 0.0
    else:
        typical_ms = percentile(tally.e2e_ns, 0.5) / 1e6
    own = not (spec.open_loop and spec.concurrency)
    return Evidence(client_delay_p99_ms=delay_ms, client_delay_share=delay_share(delay_ms, typical_ms) if own else 0.0,
                    sender_cpu_pct=max(r.monitor.cpu_pct for r in reports),
                    loop_lag_p99_ms=max(r.monitor.loop_lag_p99_ms for r in reports),
                    agent_cpu_pct=cpu.agent_pct, node_cpu_pct=cpu.node_pct, server_cpu_pct=cpu.server_pct,
                    lost="; ".join(r.lost for r in reports if r.lost))


def slot_delays(spec: StepSpec, tally: StepTally) -> list[int]:
    """The dispatch delays the verdict judges. Closed loop: those of the sends that followed a freed slot
    (slot freed -> send); the first `concurrency` sends follow the step's start, one slot after another
    (the ramp: stored with each record, not judged). Open loop: every send's (scheduled -> sent)."""
    if spec.open_loop:
        return tally.dispatch_ns
    order = sorted(range(len(tally.start_ns)), key=tally.start_ns.__getitem__)
    return [tally.dispatch_ns[i] for i in order[spec.concurrency:]]


def _note(tally: StepTally, event: pb.StepEvent, processes: int, evidence: Evidence) -> str:
    """What a step's last line says after its throughput: the dispatch delay, the agent's CPU, early ends,
    errors by class, and the step's verdict where it is not ok (core/verdict.py, in the report's words)."""
    note = f"dispatch p99 {percentile(tally.dispatch_ns, 0.99) / 1e6:.2f} ms, agent CPU {event.agent_cpu_pct:.0f}%"
    if processes > 1:
        note += f" (busiest of {processes} workers)"
    if tally.early:
        note += f", {tally.early} ended early"
    if tally.by_class:
        note += ", errors: " + ", ".join(f"{k}={v}" for k, v in sorted(tally.by_class.items()))
    if evidence.verdict != OK:
        note += f"  {evidence.sentence()}"
    if evidence.verdict == CLIENT_LIMITED:
        note += " (this step's throughput and latency are not publishable)"
    return note


class _NullStream:
    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
