"""Load generation: closed-loop concurrency steps and open-loop rate steps of streamed requests, each
timed per chunk and emitted to a sink as it completes.

Coordinated omission: every request has a scheduled time (open loop: its arrival in the Poisson or
constant schedule; closed loop: the moment its worker became free) and a send time; the difference is
stored as `dispatch_delay_ns`, so a late client or a concurrency cap is visible instead of hidden.

Hot path: `send_request`'s body callback, run by `httpstream` in the callback that received the bytes
(stamped there before any parsing; on plain connections with the kernel's receive time), feeding the SSE decoder and `StreamTimeline`'s typed (msgspec)
chunk reader. Requests (head and body) are serialised before they are scheduled, so nothing but the
socket write happens between a request's send stamp and its send.

Who sends: a `Sender` (the send path of one process) runs a `Share` of a step. With `workers: 1` the agent's
own process sends the whole step; with more, `siliconbench.agent.workers` splits each step into shares, one per worker
process, and `LoadGenerator` merges what comes back. Either way this module's `_step` scrapes, tallies,
monitors and emits the step's events. With `workers: auto`, `siliconbench.agent.sizing` picks the number at the
start and after each step (from one process to a pool, or a larger pool), or stops the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Protocol

import aiohttp

from siliconbench.agent.errors import TargetMisconfigured
from siliconbench.agent.httpstream import StreamingClient
from siliconbench.core.outcomes import ErrorClass
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.agent.progress import StepProgress, StepThroughput
from siliconbench.agent.scrape import scrape, server_metrics
from siliconbench.agent.selfmon import SelfMonitor, SelfReport, percentile
from siliconbench.agent.sizing import initial_workers, usable_cores, workers_after_step
from siliconbench.agent.clock import DeadlineTimer
from siliconbench.agent.sse import SseDecoder
from siliconbench.agent.stream import StreamTimeline
from siliconbench.agent.target import PromptBook, TargetInfo
from siliconbench.core.wire import pb

if TYPE_CHECKING:  # at run time imported in _start: siliconbench.agent.workers imports this module
    from siliconbench.agent.workers import WorkerPool

log = logging.getLogger(__name__)

ENDPOINT_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


class RecordSink(Protocol):
    """Where records go (the shipper in the agent; a list in tests)."""

    def add_run(self, event: pb.RunEvent) -> None: ...

    def add_step(self, event: pb.StepEvent) -> None: ...

    def add_request(self, record: pb.RequestRecord) -> None: ...

    def add_server_metrics(self, metrics: list[pb.ServerMetric]) -> None: ...

    async def wait_for_room(self) -> None:
        """Return when the sink can take another step's records (the shipper's spool is not full)."""

    def pause_reason(self) -> str | None:
        """Why `wait_for_room` would wait now (the spool is full, or its disk refuses writes); None: it would not.
        The step's progress line shows it."""


@dataclass(frozen=True, slots=True)
class StepSummary:
    step: int
    concurrency: int
    repetition: int
    requests: int
    errors: int
    output_tokens: int
    wall_s: float
    mode: str = "closed"
    rate_rps: float = 0.0
    early_finishes: int = 0          # ended before the requested output length (finish_reason != "length")
    errors_by_class: dict = field(default_factory=dict)
    dispatch_delay_p99_ms: float = 0.0
    agent_cpu_pct: float = 0.0
    loop_lag_p99_ms: float = 0.0
    client_saturated: bool = False

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.wall_s if self.wall_s > 0 else 0.0


def request_body(plan: Plan, model: str, prompt: list[int] | str | list[dict]) -> bytes:
    """The JSON body of one streamed request: a fixed output length (max_tokens + ignore_eos; chat's
    OpenAI name max_completion_tokens) and usage on every chunk (vLLM's continuous_usage_stats) so
    multi-token chunks are counted exactly."""
    body: dict = {"model": model}
    if plan.endpoint == "chat":
        body["messages"] = prompt
        body["max_completion_tokens"] = plan.output_tokens
    else:
        body["prompt"] = prompt  # token ids: an exact input length with no tokenizer on the client
        body["max_tokens"] = plan.output_tokens
    body.update({"ignore_eos": True, "temperature": 0, "stream": True,
                 "stream_options": {"include_usage": True, "continuous_usage_stats": True}})
    body.update(plan.extra)
    return json.dumps(body, separators=(",", ":")).encode()


def tokens_asked(plan: Plan) -> int:
    """The output length a request of `plan` asks for: `output_tokens`, or more where `plan.extra` sets
    max_tokens or max_completion_tokens itself (the stream's bound, see agent/stream.py)."""
    return max([plan.output_tokens] + [value for key, value in plan.extra.items()
                                       if key in ("max_tokens", "max_completion_tokens") and type(value) is int])


async def send_request(client: StreamingClient, request: bytes, record: pb.RequestRecord, max_tokens: int,
                       scheduled_ns: int | None = None) -> None:
    """Send one streamed request (built by `StreamingClient.request_bytes`) that asks for `max_tokens`, and
    fill `record` with its timings, tokens and outcome. Never raises for a failed request: the record says
    how it failed."""
    timeline = StreamTimeline(max_tokens)
    feed = SseDecoder().feed
    on_event = timeline.on_event

    def on_body(data: bytes, offset_ns: int) -> None:  # hot path: runs in the read callback
        for payload in feed(data):
            on_event(payload, offset_ns)

    ex = await client.exchange(request, on_body, timeline.max_body_bytes)
    record.start_unix_ns = ex.start_unix_ns
    record.dispatch_delay_ns = ex.t0_ns - scheduled_ns if scheduled_ns is not None else 0
    record.http_status = ex.status
    record.e2e_ns = ex.end_ns - ex.t0_ns
    if ex.error is not None:
        record.error_class = ex.error.error_class
        record.error_message = str(ex.error)[:500]
    elif ex.status != 200:
        record.error_class = ErrorClass.HTTP_STATUS
        record.error_message = f"HTTP {ex.status}: {ex.error_body[:300].decode(errors='replace')}"
    elif not timeline.done:
        record.error_class = ErrorClass.TRUNCATED
        record.error_message = "the stream ended before data: [DONE]"
    offsets = timeline.offsets_ns
    record.ttft_ns = offsets[0] if offsets else -1
    record.chunk_offset_ns.extend(offsets)
    record.chunk_tokens.extend(timeline.tokens)
    record.prompt_tokens = timeline.prompt_tokens
    record.output_tokens = timeline.output_tokens
    record.tokens_counted = timeline.tokens_counted
    record.finish_reason = timeline.finish_reason


class _StepTally:
    """What a step's summary needs, gathered per finished request (cheap: no record is kept)."""

    __slots__ = ("requests", "errors", "early", "dispatch_ns", "by_class", "throughput", "progress")

    def __init__(self, progress: StepProgress) -> None:
        self.requests = self.errors = self.early = 0
        self.dispatch_ns: list[int] = []
        self.by_class: Counter[str] = Counter()
        self.throughput = StepThroughput()
        self.progress = progress

    def add(self, record: pb.RequestRecord, output_tokens_wanted: int) -> None:
        self.requests += 1
        self.dispatch_ns.append(record.dispatch_delay_ns)
        self.throughput.add(record)
        failed = bool(record.error_class)
        if failed:
            self.errors += 1
            self.by_class[record.error_class] += 1
        elif record.output_tokens < output_tokens_wanted:
            self.early += 1
        self.progress.update(record.output_tokens, failed)


UNBOUNDED = 1 << 62  # request numbers of a step bounded by duration only (a range's stop)
Done = Callable[[pb.RequestRecord], None]  # takes each finished record


@dataclass(frozen=True, slots=True)
class Share:
    """One process's part of a step: the whole step when one process sends, a split across workers otherwise.
    Records carry the step's own concurrency (`spec.concurrency`), never the share's."""

    spec: StepSpec
    step: int
    repetition: int
    concurrency: int       # closed loop: requests in flight; open loop: cap (0: none)
    rate_rps: float        # open loop: this share's arrival rate
    numbers: range         # this share's request numbers, taken in order (request id run/step/number)
    seed: int | str        # open loop: this share's own arrival schedule
    phase_ns: int = 0      # open loop: first arrival after the step's start
    prompt_base: int = 0   # request number k sends prompt prompt_base + k


def whole_step(spec: StepSpec, step: int, repetition: int, seed: int, prompt_base: int) -> Share:
    """The share of a step sent from one process."""
    numbers = range(spec.requests) if spec.requests else range(UNBOUNDED)
    return Share(spec, step, repetition, spec.concurrency, spec.rate_rps, numbers, seed * 1_000_003 + step,
                 prompt_base=prompt_base)


@dataclass(frozen=True, slots=True)
class ShareReport:
    """How one process fared with its share."""

    monitor: SelfReport
    dispatch_p99_ms: float   # of this share's requests
    next_number: int         # one past the highest request number taken (the next step's prompts follow)
    lost: str = ""           # the worker process died during the share: what happened

    def saturated(self, dispatch_counts: bool) -> bool:
        return bool(self.lost) or self.monitor.saturated(self.dispatch_p99_ms, dispatch_counts)

    def reasons(self, dispatch_counts: bool) -> str:
        if self.lost:
            return "a worker process died"
        return self.monitor.reasons(self.dispatch_p99_ms, dispatch_counts)


class Sender:
    """The send path of one process: builds each request just before its time, sends it, and hands the
    finished record to the step's `done` callback. `start` in the event loop, `close` when done."""

    def __init__(self, plan: Plan, model: str, base_url: str, prompts: PromptBook, run_id: str) -> None:
        self._plan = plan
        self._model = model
        self._prompts = prompts
        self._run_id = run_id
        self._path = ENDPOINT_PATHS[plan.endpoint]
        self._max_tokens = tokens_asked(plan)
        self._client = StreamingClient(base_url, plan.request_timeout_s)
        self._timer = DeadlineTimer()
        self.next_number = 0  # of the share being sent; read by a worker's outbox while the share runs
        # awaited before each request: the agent's own sink pauses the load while its spool takes no batches
        # (full, or its disk refuses writes); the wait shows as dispatch delay. Workers pause between steps.
        self.gate: Callable[[], Awaitable[None]] | None = None

    def start(self) -> None:
        self._timer.start()

    def close(self) -> None:
        self._timer.close()
        self._client.close()

    def _request(self, request_id: str, prompt: int) -> bytes:
        body = request_body(self._plan, self._model, self._prompts.prompt(prompt))
        return self._client.request_bytes(self._path, body, request_id)

    def _prepare(self, share: Share, i: int) -> tuple[pb.RequestRecord, bytes]:
        record = pb.RequestRecord(run_id=self._run_id, request_id=f"{self._run_id}/{share.step}/{i}",
                                  step=share.step, concurrency=share.spec.concurrency, repetition=share.repetition)
        if i >= self.next_number:
            self.next_number = i + 1
        return record, self._request(record.request_id, share.prompt_base + i)

    async def warm_up(self, numbers: range) -> WarmUp:
        """Requests that prime connections and server caches; their records are discarded, their outcome
        returned."""
        records = [pb.RequestRecord() for _ in numbers]
        requests = [self._request(f"{self._run_id}/warmup/{i}", i) for i in numbers]
        await asyncio.gather(*(send_request(self._client, r, record, self._max_tokens)
                               for r, record in zip(requests, records)))
        refusals = [r.error_message for r in records if 400 <= r.http_status < 500]
        return WarmUp(requests=len(records), refused=len(refusals), first_refusal=refusals[0] if refusals else "")

    async def run(self, share: Share, start_ns: int, done: Done) -> ShareReport:
        """Send `share` from the monotonic instant `start_ns` (perf_counter_ns); each finished record goes
        to `done`. The schedule stays anchored at `start_ns` even when this process reaches it late, so
        lateness shows as dispatch delay."""
        await self._timer.sleep_until(start_ns / 1e9)  # perf_counter and monotonic: one clock on Linux
        self.next_number = 0
        dispatch: list[int] = []

        def finished(record: pb.RequestRecord) -> None:
            dispatch.append(record.dispatch_delay_ns)
            done(record)

        monitor = SelfMonitor()
        monitor.start()
        if share.spec.open_loop:
            await self._open(share, start_ns, finished)
        else:
            await self._closed(share, start_ns, finished)
        me = await monitor.stop()
        return ShareReport(me, percentile(dispatch, 0.99) / 1e6, self.next_number)

    async def _one(self, request: bytes, record: pb.RequestRecord, scheduled_ns: int,
                   done: Done) -> None:
        if self.gate is not None:
            await self.gate()
        await send_request(self._client, request, record, self._max_tokens, scheduled_ns)
        done(record)

    async def _closed(self, share: Share, start_ns: int, done: Done) -> None:
        """`share.concurrency` loops, each sending its next request as soon as its last one ended."""
        duration_s = share.spec.duration_s
        deadline = start_ns + int(duration_s * 1e9) if duration_s else 0
        numbers = iter(share.numbers)  # shared: each loop takes the next request number when free

        async def loop() -> None:
            for i in numbers:
                if deadline and perf_counter_ns() >= deadline:
                    return
                record, request = self._prepare(share, i)
                await self._one(request, record, perf_counter_ns(), done)

        await asyncio.gather(*(loop() for _ in range(min(share.concurrency, len(share.numbers)))))

    async def _open(self, share: Share, start_ns: int, done: Done) -> None:
        """Requests scheduled at `share.rate_rps` (Poisson or evenly spaced), each sent at its time whatever
        the others are doing, at most `share.concurrency` in flight when that is > 0 (a request waiting for a
        slot waits with its clock running: the wait is its dispatch delay)."""
        spec = share.spec
        rng = random.Random(share.seed)
        rate = share.rate_rps
        gap_s = 1.0 / rate
        cap = asyncio.Semaphore(share.concurrency) if share.concurrency else None
        end = start_ns + int(spec.duration_s * 1e9) if spec.duration_s else 0
        due = start_ns + share.phase_ns
        tasks: set[asyncio.Task] = set()

        async def capped(request: bytes, record: pb.RequestRecord, scheduled: int) -> None:
            async with cap:  # type: ignore[union-attr]
                await self._one(request, record, scheduled, done)

        for i in share.numbers:
            if end and due >= end:
                break
            record, request = self._prepare(share, i)  # built before its time comes
            await self._timer.sleep_until(due / 1e9)
            coro = capped(request, record, due) if cap else self._one(request, record, due, done)
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += int((rng.expovariate(rate) if spec.mode == "poisson" else gap_s) * 1e9)
        if tasks:
            await asyncio.gather(*tasks)


@dataclass(frozen=True, slots=True)
class WarmUp:
    """How the warm-up requests went. They are not stored, but a target that refuses every one of them
    (HTTP 4xx: it will not serve requests shaped like the benchmark's) is misconfigured. Other failures
    (5xx, timeouts, broken streams) are what a benchmark measures: the run goes on and records them."""

    requests: int = 0
    refused: int = 0
    first_refusal: str = ""

    def __add__(self, other: WarmUp) -> WarmUp:
        return WarmUp(self.requests + other.requests, self.refused + other.refused,
                      self.first_refusal or other.first_refusal)

    def check(self) -> None:
        """Raise TargetMisconfigured when there were warm-up requests and the target refused them all."""
        if self.refused and self.refused == self.requests:
            raise TargetMisconfigured(
                f"the target refused all {self.refused} warm-up requests; the first: {self.first_refusal}. Check "
                "--model and --endpoint, and that the server is vLLM's OpenAI-compatible one (the benchmark's "
                "requests use ignore_eos and stream_options)")


class LoadGenerator:
    """Runs a plan's steps against one target and emits every record to a sink. Sends from this process
    (`plan.workers == 1`) or from a pool of worker processes (`siliconbench.agent.workers`)."""

    def __init__(self, plan: Plan, target: TargetInfo, prompts: PromptBook, sink: RecordSink, run_id: str,
                 show_progress: bool = True, on_step_boundary: Callable[[], None] = lambda: None) -> None:
        """`on_step_boundary` is called just before each step starts and just after it ends (the agent reads
        its samplers' energy counters there). The step's start is stamped after it returns and its end
        before it is called, so a hook that returns once it has read brackets the step exactly."""
        self._plan = plan
        self._on_step_boundary = on_step_boundary
        self._target = target
        self._prompts = prompts
        self._sink = sink
        self._run_id = run_id
        self._show_progress = show_progress
        self._prompt_base = 0  # request k of the next step sends prompt _prompt_base + k
        self._sender: Sender | None = None
        self._pool: WorkerPool | None = None  # when more than one process sends
        self._cores = usable_cores()
        self._workers = plan.workers if plan.workers != "auto" else initial_workers(plan, self._cores)

    async def run(self, session: aiohttp.ClientSession) -> list[StepSummary]:
        """Warm-up, then every step of every repetition, in order. `session` serves /metrics scrapes."""
        plan = self._plan
        specs = plan.step_specs()
        try:
            await self._start()
            await self._warm_up()
            summaries = []
            step = 0
            for repetition in range(plan.repetitions):
                for spec in specs:
                    title = f"step {step + 1}/{plan.total_steps} {spec.label()} rep={repetition}"
                    await self._sink.wait_for_room()  # a full spool pauses the load rather than drop data
                    summary = await self._step(session, spec, step, repetition, title)
                    summaries.append(summary)
                    if plan.workers == "auto":
                        await self._resize(workers_after_step(self._workers, self._cores, summary.agent_cpu_pct,
                                                              summary.wall_s, step, spec.label()),
                                           summary.agent_cpu_pct)
                    step += 1
            return summaries
        finally:
            if self._sender is not None:
                self._sender.close()
            if self._pool is not None:
                await self._pool.close()

    async def _start(self) -> None:
        plan, target = self._plan, self._target
        if self._workers == 1:
            self._sender = Sender(plan, target.model, target.base_url, self._prompts, self._run_id)
            self._sender.gate = self._sink.wait_for_room
            self._sender.start()
            return
        from siliconbench.agent.workers import WorkerPool  # here, not at the top: siliconbench.agent.workers imports this module

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
                    title: str) -> StepSummary:
        base = self._target.base_url
        before = await scrape(session, base)
        progress = (StepProgress(title, spec.requests, note=self._sink.pause_reason) if self._show_progress
                    else StepProgress(title, 0, _NullStream()))
        tally = _StepTally(progress)
        wanted = self._plan.output_tokens
        add_request = self._sink.add_request

        def done(record: pb.RequestRecord) -> None:
            tally.add(record, wanted)
            add_request(record)

        self._on_step_boundary()
        start_ns = time.time_ns()
        reports = await self._send_step(spec, step, repetition, done)
        end_ns = time.time_ns()
        self._on_step_boundary()
        self._prompt_base += max(r.next_number for r in reports)
        after = await scrape(session, base)
        self._sink.add_server_metrics(server_metrics(self._run_id, step, before, after))
        dispatch_p99_ms = percentile(tally.dispatch_ns, 0.99) / 1e6
        dispatch_is_clients = spec.open_loop and not spec.concurrency
        # several workers: the busiest one speaks for the agent, and one saturated worker flags the step
        cpu_pct = max(r.monitor.cpu_pct for r in reports)
        lag_p99_ms = max(r.monitor.loop_lag_p99_ms for r in reports)
        saturated = any(r.saturated(dispatch_is_clients) for r in reports)
        self._sink.add_step(pb.StepEvent(
            run_id=self._run_id, step=step, concurrency=spec.concurrency, repetition=repetition,
            start_unix_ns=start_ns, end_unix_ns=end_ns, requests=tally.requests, mode=spec.mode,
            rate_rps=spec.rate_rps, agent_cpu_pct=cpu_pct, loop_lag_p99_ms=lag_p99_ms,
            client_saturated=saturated))
        wall_s = tally.throughput.wall_s if tally.requests else (end_ns - start_ns) / 1e9
        note = f"dispatch p99 {dispatch_p99_ms:.2f} ms, agent CPU {cpu_pct:.0f}%"
        if len(reports) > 1:
            note += f" (busiest of {len(reports)} workers)"
        if tally.early:
            note += f", {tally.early} ended early"
        if tally.by_class:
            note += ", errors: " + ", ".join(f"{k}={v}" for k, v in sorted(tally.by_class.items()))
        if saturated:
            reasons = "; ".join(r.reasons(dispatch_is_clients) for r in reports if r.saturated(dispatch_is_clients))
            note += f"  CLIENT SATURATED ({reasons}): not publishable as is"
            log.warning("run %s step %d: the agent itself may have limited the load (%s)", self._run_id, step,
                        reasons)
        progress.finish(tally.throughput, note)
        if self._pool is not None:
            self._pool.raise_if_lost()  # after the step's records and event are out
        return StepSummary(step=step, concurrency=spec.concurrency, repetition=repetition, requests=tally.requests,
                           errors=tally.errors, output_tokens=tally.throughput.tokens, wall_s=wall_s, mode=spec.mode,
                           rate_rps=spec.rate_rps, early_finishes=tally.early, errors_by_class=dict(tally.by_class),
                           dispatch_delay_p99_ms=dispatch_p99_ms, agent_cpu_pct=cpu_pct,
                           loop_lag_p99_ms=lag_p99_ms, client_saturated=saturated)


class _NullStream:
    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
