"""A probe as an ordinary step of the load generator: sent, stored and shown like any step, its requests
kept to be judged.

A closed-loop probe is judged on its steady part only: the requests sent once all its streams were in
flight (from the start of its `concurrency`-th request) that ended before the first stream was left
without a successor (the first end after its last send); its output tok/s is the tokens that arrived in
that same window, from every request, over its length. A rate probe is judged on all its requests, over
its first send to its last end, and on the rate they completed at against the rate they were sent at (a
Poisson schedule's own). While a probe runs, the server's `vllm:num_requests_waiting` is read every
`WATCH_EVERY_S`; a probe whose waiting requests grew and whose TTFT rose through it is
over-saturated.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence

import aiohttp

from siliconbench.agent.load.sink import Item, RecordSink
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.scrape import scrape
from siliconbench.agent.search.method import Measured
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.core.wire import pb

WATCH_EVERY_S = 0.25
WAITING = "vllm:num_requests_waiting"
TTFT_RISE = 1.5  # the last third's median TTFT over the first third's that counts as a rise


class ProbeSink:
    """Hands everything on to `sink`, keeping the request records of the step under way. A step's event
    waits until the search has judged the step (`judged` tags it with its probe); the run's end event
    carries the search's `result` once there is one."""

    def __init__(self, sink: RecordSink) -> None:
        self._sink = sink
        self.records: list[pb.RequestRecord] = []
        self.result: pb.SearchResult | None = None
        self._held: pb.StepEvent | None = None

    def add(self, item: Item) -> None:
        if isinstance(item, pb.RequestRecord):
            self.records.append(item)
        elif isinstance(item, pb.StepEvent):
            self.release()
            self._held = item
            return
        elif isinstance(item, pb.RunEvent) and item.phase == pb.PHASE_END and self.result is not None:
            item.search.CopyFrom(self.result)
        self._sink.add(item)

    def judged(self, probe: pb.SearchProbe) -> None:
        """Tag the step just ended with its probe and hand its event on."""
        if self._held is not None:
            self._held.search_probe.CopyFrom(probe)
        self.release()

    def release(self) -> None:
        """Hand on a step's event still waiting (the search stopped before judging it)."""
        held, self._held = self._held, None
        if held is not None:
            self._sink.add(held)

    async def wait_for_room(self) -> None:
        await self._sink.wait_for_room()

    def pause_reason(self) -> str | None:
        return self._sink.pause_reason()


def _end(record: pb.RequestRecord) -> int:
    return record.start_unix_ns + record.e2e_ns


def steady_window(records: Sequence[pb.RequestRecord], concurrency: int) -> tuple[int, int] | None:
    """When a closed loop had all `concurrency` streams in flight: from the start of its
    `concurrency`-th request to the first end after its last send (ns); None when it never had."""
    starts = sorted(r.start_unix_ns for r in records)
    if len(starts) <= concurrency:
        return None
    last_send = starts[-1]
    return starts[concurrency - 1], min((_end(r) for r in records if _end(r) > last_send), default=last_send)


def steady_part(records: Sequence[pb.RequestRecord], concurrency: int) -> list[pb.RequestRecord]:
    """A closed loop's requests sent with all `concurrency` streams in flight and ended before the first
    stream went without a successor."""
    window = steady_window(records, concurrency)
    if window is None:
        return []
    full_from, drain_at = window
    return sorted((r for r in records if r.start_unix_ns >= full_from and _end(r) <= drain_at),
                  key=lambda r: r.start_unix_ns)


def _span(records: Sequence[pb.RequestRecord]) -> tuple[int, int] | None:
    """From the first send to the last end (ns); None for no requests."""
    if not records:
        return None
    return min(r.start_unix_ns for r in records), max(_end(r) for r in records)


def completion_rate(records: Sequence[pb.RequestRecord]) -> float:
    """Requests completed per second, between the first completion and the last."""
    ends = sorted(_end(r) for r in records)
    span_s = (ends[-1] - ends[0]) / 1e9 if len(ends) > 1 else 0.0
    return (len(ends) - 1) / span_s if span_s > 0 else 0.0


def send_rate(records: Sequence[pb.RequestRecord]) -> float:
    """Requests sent per second, between the first send and the last: the rate a rate probe offered
    (its Poisson schedule's own, which its completions are compared with)."""
    starts = sorted(r.start_unix_ns for r in records)
    span_s = (starts[-1] - starts[0]) / 1e9 if len(starts) > 1 else 0.0
    return (len(starts) - 1) / span_s if span_s > 0 else 0.0


def output_tps(records: Sequence[pb.RequestRecord], window: tuple[int, int]) -> float:
    """Output tok/s within `window` (ns, wall clock): the tokens of every successful request's chunks
    that arrived in it, whichever request they belong to, over its length. A chunk's tokens are its
    `chunk_tokens` where the agent counted them, else the request's output tokens shared evenly."""
    begin, end = window
    if end <= begin:
        return 0.0
    tokens = 0.0
    for r in records:
        if r.error_class:
            continue
        offsets = list(r.chunk_offset_ns) or [r.e2e_ns]
        counts = (list(r.chunk_tokens) if len(r.chunk_tokens) == len(offsets)
                  else [r.output_tokens / len(offsets)] * len(offsets))
        tokens += sum(n for offset, n in zip(offsets, counts) if begin <= r.start_unix_ns + offset <= end)
    return tokens / ((end - begin) / 1e9)


def over_saturation(records: Sequence[pb.RequestRecord], waiting: Sequence[float]) -> str:
    """Why the server was over-saturated through the probe (TTFT rising, and waiting requests growing
    where /metrics told them), or empty."""
    ttfts = [(r.start_unix_ns, r.ttft_ns / 1e6) for r in sorted(records, key=lambda r: r.start_unix_ns)
             if not r.error_class and r.ttft_ns >= 0]
    third = len(ttfts) // 3
    if third < 3:
        return ""
    first = statistics.median(t for _, t in ttfts[:third])
    last = statistics.median(t for _, t in ttfts[-third:])
    if last <= TTFT_RISE * first:
        return ""
    if len(waiting) >= 2:
        half = len(waiting) // 2
        early, late = max(waiting[:half]), max(waiting[half:])
        if late <= early:
            return ""
        return (f"server over-saturated: requests waiting grew from {early:g} to {late:g} and the median TTFT "
                f"rose from {first:.0f} to {last:.0f} ms within the probe")
    return f"server over-saturated: the median TTFT rose from {first:.0f} to {last:.0f} ms within the probe"


class StepProber:
    """Runs each probe as a step of `generator` (started) and measures it."""

    def __init__(self, generator: LoadGenerator, sink: ProbeSink, session: aiohttp.ClientSession, plan: Plan,
                 control: str, base_url: str) -> None:
        self._generator = generator
        self._sink = sink
        self._session = session
        self._plan = plan
        self._control = control
        self._base_url = base_url

    def _spec(self, value: float, requests: int) -> StepSpec:
        if self._control == "concurrency":
            return StepSpec("closed", int(value), 0.0, requests, 0.0)
        return StepSpec(self._plan.arrival, self._plan.max_concurrency, value, requests, 0.0)

    async def __call__(self, value: float, requests: int, index: int) -> Measured:
        spec = self._spec(value, requests)
        self._sink.records = []
        waiting: list[float] = []
        watch = asyncio.create_task(self._watch(waiting))
        try:
            await self._generator.step(self._session, spec, index, 0, f"search step {index + 1} {spec.label()}")
        finally:
            watch.cancel()
        records = self._sink.records
        stored = pb.ProbeStep(step=index, steady_concurrency=spec.concurrency if self._control == "concurrency" else 0,
                              requests=len(records))
        if self._control == "concurrency":
            judged, window = steady_part(records, spec.concurrency), steady_window(records, spec.concurrency)
        else:
            judged, window = records, _span(records)
        return Measured(judged, completion_rate(records), send_rate(records),
                        output_tps(records, window) if window is not None else 0.0,
                        over_saturation(judged, waiting), self._generator.client_limit, stored)

    async def _watch(self, waiting: list[float]) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            series = await scrape(self._session, self._base_url)
            if not series:
                return  # no usable /metrics (warned once): the TTFT trend alone tells
            waiting.append(sum(v for (name, _), v in series.items() if name == WAITING))
