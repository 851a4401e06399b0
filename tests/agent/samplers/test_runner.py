"""SamplerRunner: polls off the event loop on schedule, reads counters on demand, and survives a broken source."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from siliconbench.agent.samplers.base import Sample, SamplerUnavailable
from siliconbench.agent.samplers import runner
from siliconbench.agent.samplers.runner import SamplerRunner, to_wire


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.polls = 0
        self.counter_reads = 0

    def open(self) -> None:
        pass

    def sample(self) -> list[Sample]:
        self.polls += 1
        return [Sample(time_unix_ns=1_700_000_000_000_000_000 + self.polls, source="test", device="0",
                       values={"polls": float(self.polls)})]

    def counters(self) -> list[Sample]:
        self.counter_reads += 1
        return [Sample(time_unix_ns=time.time_ns(), source="test", device="0",
                       values={"energy_mj": float(self.counter_reads)})]

    def close(self) -> None:
        pass


class Broken(Counting):
    name = "broken"

    def sample(self) -> list[Sample]:
        raise RuntimeError("device fell off the bus")


class SlowFirstPoll(Counting):
    """Its first poll is still running when the test asks the runner to stop."""

    name = "slow-first-poll"

    def __init__(self) -> None:
        super().__init__()
        self.first_poll_started = threading.Event()

    def sample(self) -> list[Sample]:
        samples = super().sample()
        if self.polls == 1:
            self.first_poll_started.set()
            time.sleep(0.3)
        return samples


class Absent(Counting):
    name = "absent"

    def open(self) -> None:
        raise SamplerUnavailable("not on this node")


async def collect(runner_samplers, interval_s: float, action) -> list:
    received: list = []
    got = asyncio.Event()

    def emit(samples):
        received.extend(samples)
        got.set()

    runner = SamplerRunner(runner_samplers, interval_s, asyncio.get_running_loop(), emit)
    runner.run_id = "run-1"
    runner.start()
    await action(runner, got)
    await asyncio.to_thread(runner.stop)
    await asyncio.sleep(0)  # let the last call_soon_threadsafe land
    return received


async def test_counters_are_read_at_once_on_demand_and_the_full_polls_keep_their_schedule():
    source = Counting()

    async def action(runner, got):
        await asyncio.wait_for(got.wait(), 5)  # the first poll happens at start
        for _ in range(3):
            got.clear()
            runner.read_counters_now()
            await asyncio.wait_for(got.wait(), 2)  # far sooner than the 60 s interval

    received = await collect([source], 60.0, action)
    assert source.counter_reads == 3
    assert source.polls == 2  # the first and the last: a counter read is not a poll
    assert [s.values.keys() == {"energy_mj"} for s in received] == [False, True, True, True, False]
    assert all(s.run_id == "run-1" and s.source == "test" for s in received)


async def test_a_boundary_read_is_done_and_tagged_with_the_run_when_read_counters_now_returns():
    # The interleaving that lost the last step's end reading under load: the sampler thread is busy (here
    # in a 0.3 s poll; on a loaded machine, not scheduled) when the step ends; the run ends and its id is
    # cleared before that thread gets to the counters. The end reading must still precede the return and
    # belong to the run, or the collector finds no counter at or after the step's end.
    source = SlowFirstPoll()
    returned_ns = 0

    async def action(runner, got):
        nonlocal returned_ns
        assert await asyncio.to_thread(source.first_poll_started.wait, 5)
        runner.read_counters_now()
        returned_ns = time.time_ns()
        runner.run_id = ""  # as run_plan does once the run is over

    received = await collect([source], 60.0, action)
    [counter] = [s for s in received if "energy_mj" in s.values]
    assert counter.run_id == "run-1"
    assert counter.time_unix_ns <= returned_ns


@pytest.mark.timing
async def test_full_polls_follow_the_interval():
    source = Counting()

    async def action(runner, got):
        await asyncio.sleep(0.55)

    started = time.monotonic()
    await collect([source], 0.1, action)
    elapsed_s = time.monotonic() - started  # >= 0.55 s; more on a loaded machine, with more polls due
    assert 4 <= source.polls <= elapsed_s / 0.1 + 2  # one at start, one per 100 ms, one at stop: not one per wake


async def test_a_failing_or_absent_sampler_does_not_stop_the_others(caplog):
    caplog.set_level(logging.INFO)
    good = Counting()

    async def action(runner, got):
        await asyncio.wait_for(got.wait(), 5)

    received = await collect([Broken(), Absent(), good], 60.0, action)
    assert received and good.polls >= 1
    assert "sampler broken failed" in caplog.text
    assert "sampler absent unavailable: not on this node" in caplog.text


async def test_stop_takes_one_last_poll():
    source = Counting()

    async def action(runner, got):
        await asyncio.wait_for(got.wait(), 5)

    await collect([source], 60.0, action)
    assert source.polls == 2  # the first, and the last one at stop


async def test_a_stop_requested_during_a_poll_still_gets_a_poll_after_it():
    source = SlowFirstPoll()

    async def action(runner, got):
        assert await asyncio.to_thread(source.first_poll_started.wait, 5)

    await collect([source], 60.0, action)
    assert source.polls == 2  # the one under way when stop came, and one after it


def test_a_value_the_store_cannot_take_is_dropped_alone_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(runner, "_dropped", set())  # no series warned about yet
    now = time.time_ns()
    samples = [Sample(now, "nvml", "gpu0", {"power_w": float("nan"), "gpu_util_pct": 50.0}),
               Sample(now, "nvml", "gpu0", {"power_w": float("inf"), "x" * 300: 1.0}),
               Sample(now, "neuron", "d" * 300, {"util_pct": 1.0})]
    wire = to_wire(samples, "r") + to_wire(samples, "r")
    assert [dict(w.values) for w in wire] == [{"gpu_util_pct": 50.0}] * 2
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 3  # once per series, however often it comes
    assert any("the value is nan" in m for m in dropped) and any("300 characters" in m for m in dropped)
