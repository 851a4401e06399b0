"""The send path's closed loop, against a scripted client on the test's own clock: when each request is
built, stamped and sent. Nothing here reads the wall clock, so the order and the figures are exact."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from siliconbench.agent.load import send
from siliconbench.agent.load.send import Sender, whole_step
from siliconbench.agent.target import PromptBook
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.core.wire import pb

BUILD_NS = 400_000      # what building one request body costs on the test's clock (8,192 token ids: 412 us)
RESPONSE_NS = 5_000_000  # each request's time in flight


class Clock:
    def __init__(self) -> None:
        self.ns = 0

    def now(self) -> int:
        return self.ns


class ScriptedClient:
    """Stands in for StreamingClient: writes each request at once (logged), keeps it in flight while the loop
    runs whatever else is ready, then answers `data: [DONE]` RESPONSE_NS later (logged)."""

    def __init__(self, clock: Clock, log: list[str]) -> None:
        self._clock = clock
        self._log = log

    def request_bytes(self, path: str, body: bytes, request_id: str) -> bytes:
        return request_id.encode()

    async def exchange(self, request: bytes, on_body, max_body_bytes: int) -> SimpleNamespace:
        t0_ns = self._clock.now()
        self._log.append(f"send {request.decode()}")
        await asyncio.sleep(0)  # in flight: the loop runs what was ready
        self._clock.ns += RESPONSE_NS
        on_body(b"data: [DONE]\n\n", RESPONSE_NS)
        self._log.append(f"end {request.decode()}")
        return SimpleNamespace(start_unix_ns=t0_ns, t0_ns=t0_ns, end_ns=self._clock.now(), status=200, error=None,
                               error_body=b"")

    def close(self) -> None:
        pass


@pytest.fixture
def scripted(monkeypatch) -> tuple[Clock, list[str]]:
    """The send path on the test's clock, with a scripted client and a body build that costs BUILD_NS."""
    clock, log = Clock(), []
    build = send.request_body

    def slow_build(plan, model, prompt):
        log.append("build")
        clock.ns += BUILD_NS
        return build(plan, model, prompt)

    monkeypatch.setattr(send, "perf_counter_ns", clock.now)
    monkeypatch.setattr(send, "request_body", slow_build)
    monkeypatch.setattr(send, "StreamingClient", lambda base_url, timeout_s: ScriptedClient(clock, log))
    return clock, log


async def closed_step(spec: StepSpec) -> tuple[list[pb.RequestRecord], int]:
    """The step sent by one process from the clock's 0; its records in the order they ended, and the
    share's next request number."""
    plan = Plan(steps=(spec,), input_tokens=3, output_tokens=1, repetitions=1, warmup_requests=0, workers=1)
    sender = Sender(plan, "m", "http://127.0.0.1:1", PromptBook([1, 2, 3], 3), "r")
    sender.start()
    records: list[pb.RequestRecord] = []
    try:
        report = await sender.run(whole_step(spec, 0, 0, 0, 0), 0, records.append)
    finally:
        sender.close()
    return records, report.next_number


async def test_a_slot_builds_its_next_request_while_the_current_one_is_in_flight(scripted):
    _, log = scripted
    await closed_step(StepSpec("closed", concurrency=1, requests=3))
    assert log == ["build", "send r/0/0",
                   "build", "end r/0/0", "send r/0/1",
                   "build", "end r/0/1", "send r/0/2",
                   "end r/0/2"]


async def test_a_slots_scheduled_time_is_stamped_before_any_build_so_no_build_is_hidden(scripted):
    records, _ = await closed_step(StepSpec("closed", concurrency=1, requests=3))
    # the first request is built after its slot's stamp (in its dispatch delay); the others were built
    # while the request before them was in flight, so each is sent the moment its slot frees
    assert [r.dispatch_delay_ns for r in records] == [BUILD_NS, 0, 0]
    assert {r.error_class for r in records} == {""}


async def test_the_slots_first_requests_are_due_at_the_steps_start_so_building_them_in_turn_shows(scripted):
    records, _ = await closed_step(StepSpec("closed", concurrency=2, requests=2))
    assert {r.request_id: r.dispatch_delay_ns for r in records} == {"r/0/0": BUILD_NS, "r/0/1": 2 * BUILD_NS}


async def test_a_request_built_but_never_sent_is_not_counted_as_started(scripted):
    # the step ends 6 ms in: requests 0 and 1 are sent, request 2 is built while 1 is in flight and dropped
    records, next_number = await closed_step(StepSpec("closed", concurrency=1, duration_s=0.006))
    assert [r.request_id for r in records] == ["r/0/0", "r/0/1"]
    assert next_number == 2


async def test_a_late_open_loop_sends_each_request_as_soon_as_it_is_built_not_after_building_the_rest(scripted):
    # on the test's clock every arrival is already due: the loop is behind schedule throughout
    _, log = scripted
    await closed_step(StepSpec("constant", concurrency=0, rate_rps=1000.0, requests=3))
    assert [entry for entry in log if not entry.startswith("end")] == [
        "build", "send r/0/0", "build", "send r/0/1", "build", "send r/0/2"]
