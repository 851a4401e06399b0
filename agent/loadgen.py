"""Load generation: closed-loop concurrency steps and open-loop rate steps of streamed requests, each
timed per chunk and emitted to a sink as it completes.

Coordinated omission: every request has a scheduled time (open loop: its arrival in the Poisson or
constant schedule; closed loop: the moment its worker became free) and a send time; the difference is
stored as `dispatch_delay_ns`, so a late client or a concurrency cap is visible instead of hidden.

Hot path: `send_request`'s body callback, run by `httpstream` in the protocol callback that received the
bytes (stamped there before any parsing), feeding the SSE decoder and `StreamTimeline`'s byte-level
chunk reader. Requests (head and body) are serialised before they are scheduled, so nothing but the
socket write happens between a request's send stamp and its send.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Protocol

import aiohttp

from agent.httpstream import StreamingClient
from agent.plan import Plan, StepSpec
from agent.progress import StepProgress
from agent.scrape import scrape, server_metrics
from agent.selfmon import SelfMonitor, percentile
from agent.clock import DeadlineTimer
from agent.sse import SseDecoder
from agent.stream import StreamTimeline
from agent.target import PromptBook, TargetInfo
from siliconbench.telemetry.v1 import telemetry_pb2 as pb

log = logging.getLogger(__name__)

ENDPOINT_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


class RecordSink(Protocol):
    """Where records go (the shipper in the agent; a list in tests)."""

    def add_run(self, event: pb.RunEvent) -> None: ...

    def add_step(self, event: pb.StepEvent) -> None: ...

    def add_request(self, record: pb.RequestRecord) -> None: ...

    def add_server_metrics(self, metrics: list[pb.ServerMetric]) -> None: ...


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


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


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


async def send_request(client: StreamingClient, request: bytes, record: pb.RequestRecord,
                       scheduled_ns: int | None = None) -> None:
    """Send one streamed request (built by `StreamingClient.request_bytes`) and fill `record` with its
    timings, tokens and outcome. Never raises for a failed request: the record says how it failed."""
    timeline = StreamTimeline()
    feed = SseDecoder().feed
    on_event = timeline.on_event

    def on_body(data: bytes, offset_ns: int) -> None:  # hot path: runs in the read callback
        for payload in feed(data):
            on_event(payload, offset_ns)

    ex = await client.exchange(request, on_body)
    record.start_unix_ns = ex.start_unix_ns
    record.dispatch_delay_ns = ex.t0_ns - scheduled_ns if scheduled_ns is not None else 0
    record.http_status = ex.status
    record.e2e_ns = ex.end_ns - ex.t0_ns
    if ex.error is not None:
        record.error_class = ex.error.error_class
        record.error_message = str(ex.error)[:500]
    elif ex.status != 200:
        record.error_class = "http_status"
        record.error_message = f"HTTP {ex.status}: {ex.error_body[:300].decode(errors='replace')}"
    elif not timeline.done:
        record.error_class = "truncated"
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

    __slots__ = ("requests", "errors", "tokens", "early", "dispatch_ns", "by_class", "first_ns", "last_ns",
                 "progress")

    def __init__(self, progress: StepProgress) -> None:
        self.requests = self.errors = self.tokens = self.early = 0
        self.dispatch_ns: list[int] = []
        self.by_class: Counter[str] = Counter()
        self.first_ns = 0
        self.last_ns = 0
        self.progress = progress

    def add(self, record: pb.RequestRecord, output_tokens_wanted: int) -> None:
        self.requests += 1
        self.dispatch_ns.append(record.dispatch_delay_ns)
        end = record.start_unix_ns + record.e2e_ns
        self.first_ns = min(self.first_ns or record.start_unix_ns, record.start_unix_ns)
        self.last_ns = max(self.last_ns, end)
        failed = bool(record.error_class)
        if failed:
            self.errors += 1
            self.by_class[record.error_class] += 1
        else:
            self.tokens += record.output_tokens
            if record.output_tokens < output_tokens_wanted:
                self.early += 1
        self.progress.update(record.output_tokens, failed)


class LoadGenerator:
    """Runs a plan's steps against one target and emits every record to a sink."""

    def __init__(self, plan: Plan, target: TargetInfo, prompts: PromptBook, sink: RecordSink, run_id: str,
                 show_progress: bool = True) -> None:
        self._plan = plan
        self._target = target
        self._prompts = prompts
        self._sink = sink
        self._run_id = run_id
        self._path = ENDPOINT_PATHS[plan.endpoint]
        self._next_prompt = 0
        self._show_progress = show_progress
        self._client = StreamingClient(target.base_url, plan.request_timeout_s)
        self._timer = DeadlineTimer()

    def _request(self, request_id: str) -> bytes:
        k = self._next_prompt
        self._next_prompt += 1
        body = request_body(self._plan, self._target.model, self._prompts.prompt(k))
        return self._client.request_bytes(self._path, body, request_id)

    async def run(self, session: aiohttp.ClientSession) -> list[StepSummary]:
        """Warm-up, then every step of every repetition, in order. `session` serves /metrics scrapes."""
        plan = self._plan
        specs = plan.step_specs()
        self._timer.start()
        try:
            await self._warm_up()
            summaries = []
            step = 0
            for repetition in range(plan.repetitions):
                for spec in specs:
                    title = f"step {step + 1}/{len(specs) * plan.repetitions} {spec.label()} rep={repetition}"
                    summaries.append(await self._step(session, spec, step, repetition, title))
                    step += 1
            return summaries
        finally:
            self._timer.close()
            self._client.close()

    async def _warm_up(self) -> None:
        """Requests that prime connections and server caches; their records are discarded."""
        n = self._plan.warmup_requests
        requests = [self._request(f"{self._run_id}/warmup/{i}") for i in range(n)]
        await asyncio.gather(*(send_request(self._client, r, pb.RequestRecord()) for r in requests))

    async def _step(self, session: aiohttp.ClientSession, spec: StepSpec, step: int, repetition: int,
                    title: str) -> StepSummary:
        base = self._target.base_url
        before = await scrape(session, base)
        progress = StepProgress(title, spec.requests) if self._show_progress else StepProgress(title, 0, _NullStream())
        tally = _StepTally(progress)
        monitor = SelfMonitor()
        monitor.start()
        start_ns = time.time_ns()
        if spec.open_loop:
            await self._open_step(spec, step, repetition, tally)
        else:
            await self._closed_step(spec, step, repetition, tally)
        end_ns = time.time_ns()
        me = await monitor.stop()
        after = await scrape(session, base)
        self._sink.add_server_metrics(server_metrics(self._run_id, step, before, after))
        dispatch_p99_ms = percentile(tally.dispatch_ns, 0.99) / 1e6
        dispatch_is_clients = spec.open_loop and not spec.concurrency
        saturated = me.saturated(dispatch_p99_ms, dispatch_is_clients)
        self._sink.add_step(pb.StepEvent(
            run_id=self._run_id, step=step, concurrency=spec.concurrency, repetition=repetition,
            start_unix_ns=start_ns, end_unix_ns=end_ns, requests=tally.requests, mode=spec.mode,
            rate_rps=spec.rate_rps, agent_cpu_pct=me.cpu_pct, loop_lag_p99_ms=me.loop_lag_p99_ms,
            client_saturated=saturated))
        wall_s = (tally.last_ns - tally.first_ns) / 1e9 if tally.requests else (end_ns - start_ns) / 1e9
        note = f"dispatch p99 {dispatch_p99_ms:.2f} ms, agent CPU {me.cpu_pct:.0f}%"
        if tally.early:
            note += f", {tally.early} ended early"
        if tally.by_class:
            note += ", errors: " + ", ".join(f"{k}={v}" for k, v in sorted(tally.by_class.items()))
        if saturated:
            note += f"  CLIENT SATURATED ({me.reasons(dispatch_p99_ms, dispatch_is_clients)}): not publishable as is"
            log.warning("run %s step %d: the agent itself may have limited the load (%s)", self._run_id, step,
                        me.reasons(dispatch_p99_ms, dispatch_is_clients))
        progress.finish(note)
        return StepSummary(step=step, concurrency=spec.concurrency, repetition=repetition, requests=tally.requests,
                           errors=tally.errors, output_tokens=tally.tokens, wall_s=wall_s, mode=spec.mode,
                           rate_rps=spec.rate_rps, early_finishes=tally.early, errors_by_class=dict(tally.by_class),
                           dispatch_delay_p99_ms=dispatch_p99_ms, agent_cpu_pct=me.cpu_pct,
                           loop_lag_p99_ms=me.loop_lag_p99_ms, client_saturated=saturated)

    def _record(self, step: int, i: int, spec: StepSpec, repetition: int) -> pb.RequestRecord:
        return pb.RequestRecord(run_id=self._run_id, request_id=f"{self._run_id}/{step}/{i}", step=step,
                                concurrency=spec.concurrency, repetition=repetition)

    async def _one(self, request: bytes, record: pb.RequestRecord, scheduled_ns: int, tally: _StepTally) -> None:
        await send_request(self._client, request, record, scheduled_ns)
        tally.add(record, self._plan.output_tokens)
        self._sink.add_request(record)

    async def _closed_step(self, spec: StepSpec, step: int, repetition: int, tally: _StepTally) -> None:
        """`spec.concurrency` workers, each sending its next request as soon as its last one ended."""
        n = spec.requests
        deadline = perf_counter_ns() + int(spec.duration_s * 1e9) if spec.duration_s else 0
        numbers = itertools.count()

        async def worker() -> None:
            for i in numbers:  # shared: each worker takes the next request number when free
                if (n and i >= n) or (deadline and perf_counter_ns() >= deadline):
                    return
                record = self._record(step, i, spec, repetition)
                request = self._request(record.request_id)
                await self._one(request, record, perf_counter_ns(), tally)

        workers = min(spec.concurrency, n) if n else spec.concurrency
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _open_step(self, spec: StepSpec, step: int, repetition: int, tally: _StepTally) -> None:
        """Requests scheduled at `spec.rate_rps` (Poisson or evenly spaced), each sent at its time whatever
        the others are doing, at most `spec.concurrency` in flight when that is > 0 (a request waiting for a
        slot waits with its clock running: the wait is its dispatch delay)."""
        n = spec.requests
        rng = random.Random(self._plan.seed * 1_000_003 + step)
        gap_s = 1.0 / spec.rate_rps
        cap = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None
        start = perf_counter_ns()
        end = start + int(spec.duration_s * 1e9) if spec.duration_s else 0
        due = start
        tasks: set[asyncio.Task] = set()

        async def capped(request: bytes, record: pb.RequestRecord, scheduled: int) -> None:
            async with cap:  # type: ignore[union-attr]
                await self._one(request, record, scheduled, tally)

        for i in itertools.count():
            if (n and i >= n) or (end and due >= end):
                break
            record = self._record(step, i, spec, repetition)
            request = self._request(record.request_id)  # built before its time comes
            # perf_counter and monotonic are the same clock (CLOCK_MONOTONIC) on Linux
            await self._timer.sleep_until(due / 1e9)
            coro = capped(request, record, due) if cap else self._one(request, record, due, tally)
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += int((rng.expovariate(spec.rate_rps) if spec.mode == "poisson" else gap_s) * 1e9)
        if tasks:
            await asyncio.gather(*tasks)


class _NullStream:
    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
