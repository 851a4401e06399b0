"""The send path of one process: each request's body and bytes built before its time, sent, timed per
chunk, and its finished record handed on.

Coordinated omission: every request has a scheduled time (open loop: its arrival in the Poisson or
constant schedule; closed loop: the moment its worker became free) and a send time; the difference is
stored as `dispatch_delay_ns`, so a late client or a concurrency cap is visible instead of hidden.

Hot path: `send_request`'s body callback, run by `httpstream` in the callback that received the bytes
(stamped there before any parsing; on plain connections with the kernel's receive time), feeding the SSE
decoder and `StreamTimeline`'s typed (msgspec) chunk reader. Requests (head and body) are serialised ahead
of their send (open loop: before their time; closed loop: while the slot's previous request is in flight),
so nothing but the socket write happens between a request's send stamp and its send, and a body's build
(28 us for 512 token ids, 412 us for 8,192) is never hidden between a slot freeing and its next send.

Imported by the worker processes (siliconbench.agent.workers): nothing here loads the shipper, grpc or the
step orchestration.
"""

from __future__ import annotations

import asyncio
import json
import random
from functools import partial
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from time import perf_counter_ns
from typing import NamedTuple

from siliconbench.agent.clock import DeadlineTimer
from siliconbench.agent.errors import TargetMisconfigured
from siliconbench.agent.httpstream import StreamingClient
from siliconbench.agent.selfmon import SelfMonitor, SelfReport
from siliconbench.agent.sse import SseDecoder
from siliconbench.agent.stream import ANSWER, REASONING, TOOL_CALL, StreamTimeline
from siliconbench.agent.target import Prompt, PromptBook, chat_fields
from siliconbench.agent.traces.prompts import TraceBook
from siliconbench.core.outcomes import ErrorClass
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.core.wire import pb

ENDPOINT_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}


def request_body(plan: Plan, model: str, prompt: Prompt, output_tokens: int = 0) -> bytes:
    """The JSON body of one streamed request: a fixed output length (max_tokens + ignore_eos; chat's
    OpenAI name max_completion_tokens) and usage on every chunk (vLLM's continuous_usage_stats) so
    multi-token chunks are counted exactly. A dataset's chat prompt may bring its tools; the plan's
    `extra` (tools too) goes on top. `output_tokens` (a trace's request's own) replaces the plan's."""
    body: dict = {"model": model}
    output_tokens = output_tokens or plan.output_tokens
    if plan.endpoint == "chat":
        body.update(chat_fields(prompt))  # type: ignore[arg-type]  # chat plans hold chat prompts only
        body["max_completion_tokens"] = output_tokens
    else:
        body["prompt"] = prompt  # token ids: an exact input length with no tokenizer on the client
        body["max_tokens"] = output_tokens
    body.update({"ignore_eos": True, "temperature": 0, "stream": True,
                 "stream_options": {"include_usage": True, "continuous_usage_stats": True}})
    body.update(plan.extra)
    return json.dumps(body, separators=(",", ":")).encode()


def tokens_asked(plan: Plan, output_tokens: int = 0) -> int:
    """The output length a request of `plan` asks for: `output_tokens` (else the plan's), or more where
    `plan.extra` sets max_tokens or max_completion_tokens itself (the stream's bound, see agent/stream.py)."""
    return max([output_tokens or plan.output_tokens] + [value for key, value in plan.extra.items()
                                       if key in ("max_tokens", "max_completion_tokens") and type(value) is int])


async def send_request(client: StreamingClient, request: bytes, record: pb.RequestRecord, max_tokens: int,
                       scheduled_ns: int | None = None, timeline: StreamTimeline | None = None) -> None:
    """Send one streamed request (built by `StreamingClient.request_bytes`) that asks for `max_tokens`, and
    fill `record` with its timings, tokens and outcome. Never raises for a failed request: the record says
    how it failed. `timeline` reads the stream (default: a `StreamTimeline`; a session's keeps the answer)."""
    timeline = timeline if timeline is not None else StreamTimeline(max_tokens)
    feed = SseDecoder().feed
    on_event = timeline.on_event

    def on_body(data: bytes, offset_ns: int) -> None:  # hot path: runs in the read callback
        for payload in feed(data):
            on_event(payload, offset_ns)

    ex = await client.exchange(request, on_body, timeline.max_body_bytes)
    record.start_unix_ns = ex.start_unix_ns
    record.max_tokens = max_tokens
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
    record.cached_tokens = timeline.cached_tokens
    record.output_tokens = timeline.output_tokens
    record.tokens_counted = timeline.tokens_counted
    record.finish_reason = timeline.finish_reason
    first = timeline.first_ns  # -1: none; the record's 0 (a chunk never arrives at the send's own nanosecond)
    record.first_answer_ns = max(first[ANSWER], 0)
    record.first_reasoning_ns = max(first[REASONING], 0)
    record.first_tool_call_ns = max(first[TOOL_CALL], 0)
    if any(timeline.kinds):  # stored only when some chunk was not an answer
        record.chunk_kinds.extend(timeline.kinds)
    if timeline.tool_calls:
        record.tool_calls = timeline.tool_calls
        record.tool_calls_invalid = timeline.invalid_tool_calls()



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
    next_number: int         # one past the highest request number started (the next step's prompts follow)
    lost: str = ""           # the worker process died during the share: what happened


class _Request(NamedTuple):
    """A request built ahead of its send: its number in the step, the record its outcome fills, its bytes."""

    number: int
    record: pb.RequestRecord
    data: bytes


class Sender:
    """The send path of one process: builds each request before its time, sends it, and hands the finished
    record to the step's `done` callback. `start` in the event loop, `close` when done."""

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

    def _request(self, request_id: str, prompt: int, model: str) -> bytes:
        body = request_body(self._plan, model, self._prompts.prompt(prompt))
        return self._client.request_bytes(self._path, body, request_id)

    def _record(self, share: Share, i: int, model: str) -> pb.RequestRecord:
        return pb.RequestRecord(run_id=self._run_id, request_id=f"{self._run_id}/{share.step}/{i}",
                                step=share.step, concurrency=share.spec.concurrency, repetition=share.repetition,
                                model=model)

    def _model_for(self, share: Share, i: int) -> str:
        mix = self._plan.models
        return mix.pick(self._plan.seed, share.step, i) if mix is not None else self._model

    def _prepare(self, share: Share, i: int) -> _Request:
        model = self._model_for(share, i)
        record = self._record(share, i, model)
        return _Request(i, record, self._request(record.request_id, share.prompt_base + i, model))

    async def warm_up(self, numbers: range) -> WarmUp:
        """Requests that prime connections and server caches; their records are discarded, their outcome
        returned."""
        records = [pb.RequestRecord() for _ in numbers]
        # to the plan's model only: a mix's adapters meet their first request in the measured steps, where
        # it is reported apart (its load cost)
        requests = [self._request(f"{self._run_id}/warmup/{i}", i, self._model) for i in numbers]
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
        monitor = SelfMonitor()
        monitor.start()
        if share.spec.mode == "trace":
            await self._replay(share, start_ns, done)
        elif share.spec.open_loop:
            await self._open(share, start_ns, done)
        else:
            await self._closed(share, start_ns, done)
        return ShareReport(await monitor.stop(), self.next_number)

    async def _replay(self, share: Share, start_ns: int, done: Done) -> None:
        """A trace's requests, each sent at its offset from `start_ns` whatever the others are doing, with its
        own input and output lengths (siliconbench.agent.traces)."""
        book = self._prompts
        assert isinstance(book, TraceBook)

        def timed() -> Iterator[tuple[int, Callable[[], Awaitable[object]]]]:
            for i in share.numbers:
                k = share.prompt_base + i
                row = book.row(k)
                model = self._model_for(share, i)
                record = self._record(share, i, model)
                book.annotate(record, k)
                record.trace_offset_ns = offset = book.arrival_ns(i)
                data = self._client.request_bytes(
                    self._path, request_body(self._plan, model, book.prompt(k), row.output_tokens),
                    record.request_id)
                due = start_ns + offset
                yield due, partial(self._one, _Request(i, record, data), due, done,
                                   tokens_asked(self._plan, row.output_tokens))

        await self._at_their_times(timed())

    async def _at_their_times(self, timed: Iterator[tuple[int, Callable[[], Awaitable[object]]]]) -> None:
        """Open loop: each send started at its due instant (monotonic ns) whatever the others are doing. The
        iterator builds each request before its time comes; all in flight are awaited at the end."""
        tasks: set[asyncio.Future] = set()
        for due, send in timed:
            await self._timer.sleep_until(due / 1e9)
            task = asyncio.ensure_future(send())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(0)  # let it send now: behind schedule, sleep_until returns without yielding
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(self, request: _Request, scheduled_ns: int, done: Done, max_tokens: int = 0) -> int:
        """Send `request` once the gate lets it, fill its record and hand it to `done`. Returns the moment
        the request ended (perf_counter_ns, before `done`): in closed loop, its slot is free from then."""
        if request.number >= self.next_number:
            self.next_number = request.number + 1
        if self.gate is not None:
            await self.gate()
        await send_request(self._client, request.data, request.record, max_tokens or self._max_tokens, scheduled_ns)
        freed_ns = perf_counter_ns()
        done(request.record)
        return freed_ns

    async def _closed(self, share: Share, start_ns: int, done: Done) -> None:
        """`share.concurrency` slots, each sending its next request as soon as its last one ended; that
        instant, stamped before anything else, is the next request's scheduled time (a slot's first: the
        share's start, so building the first requests one after another shows in their dispatch delay). A
        slot builds its next request while its current one is in flight (a task that runs once the slot waits
        for the response, so after the request is written): no build lies between a slot freeing and its
        next send."""
        duration_s = share.spec.duration_s
        deadline = start_ns + int(duration_s * 1e9) if duration_s else 0
        numbers = iter(share.numbers)  # shared: each slot takes the next request number for its next request

        async def take() -> _Request | None:
            i = next(numbers, None)
            return None if i is None else self._prepare(share, i)

        async def slot() -> None:
            freed_ns = start_ns
            request = await take()
            while request is not None and not (deadline and freed_ns >= deadline):
                upcoming = asyncio.create_task(take())
                freed_ns = await self._one(request, freed_ns, done)
                request = await upcoming

        await asyncio.gather(*(slot() for _ in range(min(share.concurrency, len(share.numbers)))))

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

        async def capped(request: _Request, scheduled: int) -> None:
            async with cap:  # type: ignore[union-attr]
                await self._one(request, scheduled, done)

        def timed() -> Iterator[tuple[int, Callable[[], Awaitable[object]]]]:
            due = start_ns + share.phase_ns
            for i in share.numbers:
                if end and due >= end:
                    return
                request, at = self._prepare(share, i), due  # built before its time comes
                yield at, partial(capped, request, at) if cap else partial(self._one, request, at, done)
                due += int((rng.expovariate(rate) if spec.mode == "poisson" else gap_s) * 1e9)

        await self._at_their_times(timed())


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

