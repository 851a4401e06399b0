"""A probe is judged on the readings the collector read from its store; when the collector cannot say in
time, on the agent's own, and the probe says why; when the two differ, the agent warns and keeps the store's."""

from __future__ import annotations

import asyncio
import logging
import math

import grpc
import pytest

from siliconbench.agent.search import stored
from siliconbench.agent.search.judge import readings_of
from siliconbench.agent.search.stored import StoredReadings, StoreReader
from siliconbench.core.search import FROM_STORE
from siliconbench.core.slo import parse_slos
from siliconbench.core.wire import pb

OBJECTIVES = parse_slos("ttft_p50_ms<=100,error_rate<=0.1")
RECORDS = [pb.RequestRecord(ttft_ns=(i + 1) * 10**6, e2e_ns=50 * 10**6) for i in range(40)]
STEPS = [pb.ProbeStep(step=3, steady_concurrency=2, requests=44)]


def reply_of(readings) -> pb.ProbeReadingsReply:
    return pb.ProbeReadingsReply(requests=40, readings=[
        pb.ProbeReading(key=r.objective.key, samples=r.samples, **{
            name: math.nan if getattr(r, name) is None else getattr(r, name) for name in ("point", "bound", "lower")})
        for r in readings])


class Reader:
    """A collector as the shipper reaches it: answers `reply`, raises `error`, or never answers."""

    def __init__(self, reply: pb.ProbeReadingsReply | None = None, error: Exception | None = None) -> None:
        self.reply, self.error, self.asked = reply, error, []

    async def probe_readings(self, request: pb.ProbeReadingsRequest, timeout_s: float) -> pb.ProbeReadingsReply:
        self.asked.append(request)
        if self.error is not None:
            raise self.error
        if self.reply is None:
            await asyncio.sleep(3600)
        assert self.reply is not None
        return self.reply


def test_the_shipper_is_a_store_reader():
    from siliconbench.agent.shipper import Shipper
    assert issubclass(Shipper, StoreReader)


async def test_the_store_s_readings_are_asked_for_the_probe_s_steps_and_judged_on():
    own = readings_of(OBJECTIVES, RECORDS)
    reader = Reader(reply_of(own))
    readings, source = await StoredReadings(reader, "search-1", OBJECTIVES)(STEPS, RECORDS)
    assert (readings, source) == (own, FROM_STORE)
    [asked] = reader.asked
    assert asked.run_id == "search-1" and list(asked.steps) == STEPS and asked.wait_s == stored.STORED_WAIT_S
    assert parse_slos(asked.slo) == OBJECTIVES  # the SLOs as the search parsed them, limits exact


async def test_readings_that_differ_from_the_agent_s_own_are_used_and_warned_of(caplog):
    own = readings_of(OBJECTIVES, RECORDS)
    reply = reply_of(own)
    reply.readings[0].bound = 99.0
    with caplog.at_level(logging.WARNING):
        readings, source = await StoredReadings(Reader(reply), "search-2", OBJECTIVES)(STEPS, RECORDS)
    assert source == FROM_STORE and readings[0].bound == 99.0 and readings[1] == own[1]
    assert "the store's readings differ from the agent's own" in caplog.text and "steps 3" in caplog.text


async def test_a_collector_that_cannot_answer_leaves_the_agent_s_own_readings_and_says_why_once(caplog):
    error = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                 details="connection refused")
    read = StoredReadings(Reader(error=error), "search-3", OBJECTIVES)
    with caplog.at_level(logging.WARNING):
        first = await read(STEPS, RECORDS)
        second = await read(STEPS, RECORDS)
    assert first == second == (readings_of(OBJECTIVES, RECORDS),
                               "agent: the collector did not answer (UNAVAILABLE: connection refused)")
    assert caplog.text.count("probes are judged on the agent's own readings") == 1


async def test_a_collector_that_does_not_answer_in_time_leaves_the_agent_s_own_readings(monkeypatch):
    monkeypatch.setattr(stored, "CALL_MARGIN_S", 0.05)
    readings, source = await StoredReadings(Reader(), "search-4", OBJECTIVES, wait_s=0.05)(STEPS, RECORDS)
    assert readings == readings_of(OBJECTIVES, RECORDS)
    assert source == "agent: the collector did not answer within 0.15 s"


async def test_readings_of_other_slos_are_not_judged_on():
    other = readings_of(parse_slos("e2e_p99_ms<=100"), RECORDS)
    readings, source = await StoredReadings(Reader(reply_of(other)), "search-5", OBJECTIVES)(STEPS, RECORDS)
    assert readings == readings_of(OBJECTIVES, RECORDS)
    assert source == "agent: the collector's readings are not of the search's SLOs"


@pytest.mark.parametrize("limit", ["0.1", "123.456789012345"])
async def test_the_slos_asked_for_parse_back_to_the_search_s(limit):
    objectives = parse_slos(f"itl_p99_ms<={limit},error_rate<=0.01")
    reader = Reader(reply_of(readings_of(objectives, RECORDS)))
    await StoredReadings(reader, "s", objectives)(STEPS, RECORDS)
    assert parse_slos(reader.asked[0].slo) == objectives
