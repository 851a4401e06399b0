"""Closed-loop load generation: concurrency steps of streamed requests, each timed per chunk.

The read loop in `_send` is the hot path: it takes the arrival time of every read first, then
hands the bytes to the SSE decoder. Request bodies are serialised before a step starts, so
nothing but the socket write happens between a request's start stamp and its send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Protocol

import aiohttp

from agent.errors import StreamFault
from agent.plan import Plan
from agent.sse import SseDecoder
from agent.stream import StreamTimeline
from agent.target import PromptBook, TargetInfo
from siliconbench.telemetry.v1 import telemetry_pb2 as pb

log = logging.getLogger(__name__)
_JSON = {"Content-Type": "application/json"}


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

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.wall_s if self.wall_s > 0 else 0.0


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def request_body(plan: Plan, model: str, prompt: list[int]) -> bytes:
    """The JSON body of one streamed request, asking for usage on every chunk (vLLM's
    continuous_usage_stats) so multi-token chunks are counted exactly."""
    body: dict = {
        "model": model,
        "max_tokens": plan.output_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }
    body["prompt"] = prompt  # token ids: an exact input length with no tokenizer on the client
    body.update(plan.extra)
    return json.dumps(body, separators=(",", ":")).encode()


def endpoint_url(target: TargetInfo, plan: Plan) -> str:
    return target.base_url + "/v1/" + plan.endpoint


async def send_request(session: aiohttp.ClientSession, url: str, body: bytes, record: pb.RequestRecord) -> None:
    """Send one streamed request and fill `record` with its timings, tokens and outcome."""
    timeline = StreamTimeline()
    decoder = SseDecoder()
    record.start_unix_ns = time.time_ns()
    t0 = perf_counter_ns()
    last = t0
    try:
        async with session.post(url, data=body, headers=_JSON) as resp:
            record.http_status = resp.status
            if resp.status != 200:
                record.error_class = "http_status"
                record.error_message = f"HTTP {resp.status}: {(await resp.text())[:300]}"
                last = perf_counter_ns()
            else:
                content = resp.content
                feed = decoder.feed
                on_event = timeline.on_event
                while True:
                    piece = await content.readany()
                    now = perf_counter_ns()  # stamp first: nothing runs between arrival and this
                    if not piece:
                        break
                    last = now
                    for payload in feed(piece):
                        on_event(payload, now - t0)
                if not timeline.done:
                    record.error_class = "truncated"
                    record.error_message = "stream ended before data: [DONE]"
    except StreamFault as exc:
        record.error_class = exc.error_class
        record.error_message = str(exc)
        last = perf_counter_ns()
    except asyncio.TimeoutError:
        record.error_class = "timeout"
        record.error_message = "request timed out (raise --request-timeout-s if the target is slow)"
        last = perf_counter_ns()
    except aiohttp.ClientConnectorError as exc:
        record.error_class = "connect"
        record.error_message = str(exc)[:300]
        last = perf_counter_ns()
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        record.error_class = "disconnected"
        record.error_message = f"{exc.__class__.__name__}: {exc}"[:300]
        last = perf_counter_ns()
    except aiohttp.ClientError as exc:
        record.error_class = "client_error"
        record.error_message = f"{exc.__class__.__name__}: {exc}"[:300]
        last = perf_counter_ns()
    record.e2e_ns = last - t0
    offsets = timeline.offsets_ns
    record.ttft_ns = offsets[0] if offsets else -1
    record.chunk_offset_ns.extend(offsets)
    record.chunk_tokens.extend(timeline.tokens)
    record.prompt_tokens = timeline.prompt_tokens
    record.output_tokens = timeline.output_tokens
    record.tokens_counted = timeline.tokens_counted
    record.finish_reason = timeline.finish_reason


class LoadGenerator:
    """Runs a plan's closed-loop steps against one target and emits every record to a sink."""

    def __init__(self, plan: Plan, target: TargetInfo, prompts: PromptBook, sink: RecordSink, run_id: str) -> None:
        self._plan = plan
        self._target = target
        self._prompts = prompts
        self._sink = sink
        self._run_id = run_id
        self._url = endpoint_url(target, plan)
        self._next_prompt = 0

    def _bodies(self, n: int) -> list[bytes]:
        start = self._next_prompt
        self._next_prompt += n
        model = self._target.model
        return [request_body(self._plan, model, self._prompts.prompt(start + i)) for i in range(n)]

    async def run(self, session: aiohttp.ClientSession) -> list[StepSummary]:
        plan = self._plan
        await self._warm_up(session)
        summaries = []
        step = 0
        for repetition in range(plan.repetitions):
            for concurrency in plan.concurrency:
                summary = await self._closed_step(session, step, concurrency, repetition)
                summaries.append(summary)
                _progress(summary, total_steps=len(plan.concurrency) * plan.repetitions)
                step += 1
        return summaries

    async def _warm_up(self, session: aiohttp.ClientSession) -> None:
        """Requests that prime connections and server caches; their records are discarded."""
        for body in self._bodies(self._plan.warmup_requests):
            await send_request(session, self._url, body, pb.RequestRecord())

    async def _closed_step(self, session: aiohttp.ClientSession, step: int, concurrency: int, repetition: int) -> StepSummary:
        n = self._plan.requests_per_step
        bodies = self._bodies(n)
        records = [
            pb.RequestRecord(run_id=self._run_id, request_id=f"{self._run_id}/{step}/{i}", step=step,
                             concurrency=concurrency, repetition=repetition)
            for i in range(n)
        ]
        cursor = iter(range(n))
        url = self._url

        async def worker() -> None:
            for i in cursor:  # shared iterator: each worker takes the next request when free
                await send_request(session, url, bodies[i], records[i])

        start_ns = time.time_ns()
        await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
        end_ns = time.time_ns()
        for record in records:
            self._sink.add_request(record)
        self._sink.add_step(pb.StepEvent(run_id=self._run_id, step=step, concurrency=concurrency,
                                         repetition=repetition, start_unix_ns=start_ns, end_unix_ns=end_ns, mode="closed",
                                         requests=n))
        return StepSummary(step=step, concurrency=concurrency, repetition=repetition, requests=n,
                           errors=sum(1 for r in records if r.error_class),
                           output_tokens=sum(r.output_tokens for r in records),
                           wall_s=(end_ns - start_ns) / 1e9)


def _progress(summary: StepSummary, total_steps: int) -> None:
    print(
        f"step {summary.step + 1}/{total_steps}  concurrency={summary.concurrency} rep={summary.repetition}  "
        f"{summary.requests} requests  {summary.errors} errors  {summary.output_tokens_per_s:,.0f} output tok/s  "
        f"({summary.wall_s:.1f} s)",
        file=sys.stderr, flush=True,
    )
