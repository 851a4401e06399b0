"""A search probe's readings read from the store equal the agent's own over the same requests: the same
steady part of each closed-loop step, the same pooled samples, the same order statistics and error-rate
bounds; the store is waited for, and a request that cannot be answered is refused by name."""

from __future__ import annotations

import math
import random
import time

import grpc
import pytest

from siliconbench.agent import uplink
from siliconbench.agent.search.judge import read as agent_read, readings_of
from siliconbench.agent.search.probe import steady_part
from siliconbench.agent.search.stored import StoredReadings
from siliconbench.core.search import FROM_STORE
from siliconbench.agent.shipper import Shipper
from siliconbench.agent.spool import Spool
from siliconbench.collector import probe_readings
from siliconbench.collector.server import build_server
from siliconbench.collector.service import TelemetryService
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.errors import ConfigError
from siliconbench.core.slo import parse_slos, slo_keys
from siliconbench.core.wire import pb
from tests.servers import HeldPort

EVERY_SLO = ",".join(f"{key}<={'0.1' if key == 'error_rate' else '500'}" for key in slo_keys())


@pytest.fixture(scope="module")
def service(store):
    svc = TelemetryService(store, store_threads=1)
    yield svc
    svc.close()


def record(rng: random.Random, run_id: str, step: int, i: int, start_ns: int) -> pb.RequestRecord:
    """A request as the agent makes one: failed, ended with no content, plain, or with reasoning and tool-call
    chunks."""
    base = pb.RequestRecord(run_id=run_id, request_id=f"{run_id}/{step}/{i}", step=step, concurrency=1,
                            start_unix_ns=start_ns, model="m", prompt_tokens=16)
    if rng.random() < 0.1:
        base.MergeFrom(pb.RequestRecord(error_class="timeout", ttft_ns=-1, e2e_ns=rng.randrange(1, 10**9),
                                        http_status=500))
        return base
    if rng.random() < 0.05:  # a stream that ended well with no content-bearing chunk: no TTFT
        base.MergeFrom(pb.RequestRecord(ttft_ns=-1, e2e_ns=rng.randrange(1, 10**9), http_status=200))
        return base
    ttft = rng.randrange(10**6, 3 * 10**8)
    offsets = [ttft]
    for _ in range(rng.randrange(0, 12)):
        offsets.append(offsets[-1] + rng.choice((0, rng.randrange(1, 5 * 10**7))))
    kinds = [rng.choice((0, 0, 1, 2)) for _ in offsets] if rng.random() < 0.3 else []
    firsts = {name: next((o for o, k in zip(offsets, kinds) if k == kind), 0)
              for name, kind in (("first_answer_ns", 0), ("first_reasoning_ns", 1), ("first_tool_call_ns", 2))}
    base.MergeFrom(pb.RequestRecord(ttft_ns=ttft, e2e_ns=offsets[-1] + rng.randrange(0, 10**7),
                                    chunk_offset_ns=offsets, chunk_tokens=[1] * len(offsets), chunk_kinds=kinds,
                                    output_tokens=rng.choice((1, len(offsets), len(offsets) + 3)), http_status=200,
                                    **firsts if kinds else {}))
    return base


def store_records(service: TelemetryService, agent: str, run_id: str, records: list[pb.RequestRecord]) -> None:
    """Store `records` as one batch from `agent`, as a stream does (parsed and checked, then inserted)."""
    batch = pb.Batch(seq=1, batch_id=f"{run_id}/1", requests=records)
    assert service.inserter.write([service.parse(agent, pb.AgentMessage(batch=batch).SerializeToString())]) == {}


def stored_probe(service: TelemetryService, rng: random.Random, run_id: str, agent: str,
                 closed: bool) -> tuple[list[pb.ProbeStep], list[pb.RequestRecord]]:
    """A probe's steps stored as the agent sends them; returns the steps and the requests the agent judges."""
    steps, judged, records = [], [], []
    t0 = time.time_ns()
    for step in range(rng.randrange(1, 4)):
        streams = rng.randrange(1, 6) if closed else 0
        made = [record(rng, run_id, step, i, t0 + step * 10**10 + rng.randrange(0, 2 * 10**9))
                for i in range(rng.randrange(0, 40))]
        records += made
        judged += steady_part(made, streams) if closed else made
        steps.append(pb.ProbeStep(step=step, steady_concurrency=streams, requests=len(made)))
    store_records(service, agent, run_id, records)
    return steps, judged


def same(stored: float, own: float | None) -> bool:
    return math.isnan(stored) if own is None else stored == own


@pytest.mark.parametrize("seed", range(12))
def test_readings_from_the_store_equal_the_agent_s_own_on_random_probes(service, store, unique_id, seed):
    rng = random.Random(seed)
    run_id = f"probe-{unique_id}"
    steps, judged = stored_probe(service, rng, run_id, "node-p", closed=seed % 3 != 0)
    objectives = parse_slos(EVERY_SLO)
    query = probe_readings.Query.of(pb.ProbeReadingsRequest(run_id=run_id, agent_id="node-p", steps=steps,
                                                            slo=EVERY_SLO, wait_s=1))
    assert probe_readings.missing(store, query) == 0
    reply = probe_readings.read(store, query)
    assert reply.requests == len(judged)
    assert [r.key for r in reply.readings] == [o.key for o in objectives]
    for objective, stored in zip(objectives, reply.readings):
        own = agent_read(objective, judged)
        assert stored.samples == own.samples, objective.key
        assert same(stored.point, own.point) and same(stored.bound, own.bound) and same(stored.lower, own.lower), (
            objective.key, stored, own)


def test_a_closed_step_with_no_more_requests_than_streams_has_no_steady_part(service, store, unique_id):
    run_id = f"short-{unique_id}"
    rng = random.Random(1)
    store_records(service, "node-s", run_id, [record(rng, run_id, 0, i, time.time_ns() + i) for i in range(4)])
    query = probe_readings.Query.of(pb.ProbeReadingsRequest(
        run_id=run_id, agent_id="node-s", steps=[pb.ProbeStep(step=0, steady_concurrency=4, requests=4)],
        slo="ttft_p50_ms<=100,error_rate<=0.1"))
    reply = probe_readings.read(store, query)
    assert reply.requests == 0 and [r.samples for r in reply.readings] == [0, 0]
    assert all(math.isnan(r.point) and math.isnan(r.bound) for r in reply.readings)


def test_rows_not_yet_stored_are_counted_and_more_rows_than_made_are_refused(service, store, unique_id):
    run_id = f"count-{unique_id}"
    rng = random.Random(2)
    store_records(service, "node-c", run_id, [record(rng, run_id, 0, i, time.time_ns() + i) for i in range(5)])

    def query(made: int) -> probe_readings.Query:
        return probe_readings.Query.of(pb.ProbeReadingsRequest(
            run_id=run_id, agent_id="node-c", steps=[pb.ProbeStep(step=0, requests=made), pb.ProbeStep(step=1, requests=3)],
            slo="e2e_p50_ms<=100"))
    assert probe_readings.missing(store, query(7)) == 2 + 3
    with pytest.raises(ConfigError, match=r"holds 5 request rows of run .* step 0, the agent made 4: the run id was used"):
        probe_readings.missing(store, query(4))


@pytest.mark.parametrize(("request_", "error"), [
    (pb.ProbeReadingsRequest(agent_id="a", steps=[pb.ProbeStep()], slo="ttft_p99_ms<=1"), "run_id must be 1 to"),
    (pb.ProbeReadingsRequest(run_id="r", agent_id="a\n", steps=[pb.ProbeStep()], slo="ttft_p99_ms<=1"),
     "agent_id must be 1 to"),
    (pb.ProbeReadingsRequest(run_id="r", agent_id="a", slo="ttft_p99_ms<=1"), "give the probe's steps: 1 to"),
    (pb.ProbeReadingsRequest(run_id="r", agent_id="a", steps=[pb.ProbeStep()] * 2, slo="ttft_p99_ms<=1"),
     "a step is given twice"),
    (pb.ProbeReadingsRequest(run_id="r", agent_id="a", steps=[pb.ProbeStep()], slo="ttft_p42_ms<=1"),
     "slo: unknown SLO 'ttft_p42_ms'"),
    (pb.ProbeReadingsRequest(run_id="r", agent_id="a", steps=[pb.ProbeStep()], slo="ttft_p99_ms<=1", wait_s=math.nan),
     "wait_s must be between 0 and"),
    (pb.ProbeReadingsRequest(run_id="r", agent_id="a", steps=[pb.ProbeStep()], slo="x" * 5000),
     "slo is longer than"),
])
def test_a_request_that_cannot_be_answered_is_refused_by_name(request_, error):
    with pytest.raises(ConfigError, match=error):
        probe_readings.Query.of(request_)


@pytest.fixture
async def served(store):
    server, service, port = await build_server(store, "127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    await server.stop(1)
    service.close()


async def test_over_loopback_grpc_a_probe_just_sent_is_read_from_the_store_as_the_agent_reads_it(served, tmp_path,
                                                                                               unique_id):
    """The shipper's last records of the step still buffered when the search asks: they go out first, the
    collector waits for them, and the readings are the agent's own."""
    run_id, agent = f"loop-{unique_id}", f"agent-{unique_id}"
    shipper = Shipper(served, pb.Hello(agent_id=agent), Spool.open(tmp_path, agent), max_age_s=60)
    shipper.start()
    rng = random.Random(7)
    made = [record(rng, run_id, 0, i, time.time_ns() + rng.randrange(0, 10**9)) for i in range(300)]
    for r in made:
        shipper.add(r)
    objectives = parse_slos("ttft_p90_ms<=100,itl_p50_ms<=20,error_rate<=0.2")
    readings, source = await StoredReadings(shipper, run_id, objectives)(
        [pb.ProbeStep(step=0, steady_concurrency=8, requests=len(made))], steady_part(made, 8))
    await shipper.close(timeout_s=20)
    assert source == FROM_STORE and readings == readings_of(objectives, steady_part(made, 8))


async def test_over_grpc_a_hostile_request_is_refused_by_name_and_missing_rows_time_out(served, unique_id):
    async with grpc.aio.insecure_channel(served) as channel:
        stub = pb_grpc.ControlStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ProbeReadings(pb.ProbeReadingsRequest(run_id="r", agent_id="a", slo="ttft_p99_ms<=1"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "give the probe's steps" in refused.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.ProbeReadings(pb.ProbeReadingsRequest(
                run_id=f"none-{unique_id}", agent_id="a", steps=[pb.ProbeStep(step=0, requests=3)],
                slo="ttft_p99_ms<=1", wait_s=0.2), timeout=10)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "3 of the probe's 3 request rows were not stored" in late.value.details()


async def test_a_collector_back_from_an_outage_is_read_at_once_the_shipper_s_back_off_cut_short(store, tmp_path,
                                                                                               unique_id, monkeypatch):
    """The shipper found no collector and waits out a long back-off; the search's call finds it answering
    again, so the stream reconnects at once and delivers the probe's rows in time to be read."""
    monkeypatch.setattr(uplink, "FIRST_BACKOFF_S", 60.0)
    monkeypatch.setattr(uplink, "MAX_BACKOFF_S", 60.0)
    run_id, agent = f"back-{unique_id}", f"agent-{unique_id}"
    with HeldPort() as held:
        address = f"127.0.0.1:{held.port}"
        shipper = Shipper(address, pb.Hello(agent_id=agent), Spool.open(tmp_path, agent))
        shipper.start()
        made = [record(random.Random(3), run_id, 0, i, time.time_ns() + i) for i in range(50)]
        for r in made:
            shipper.add(r)
        objectives = parse_slos("e2e_p50_ms<=100")
        read = StoredReadings(shipper, run_id, objectives, wait_s=5)
        steps = [pb.ProbeStep(step=0, requests=len(made))]
        _, down = await read(steps, made)
        assert down.startswith(f"agent: the collector did not answer (UNAVAILABLE: no connection to {address}")
        server, service, _ = await build_server(store, address)
        try:
            readings, source = await read(steps, made)
        finally:
            try:
                await shipper.close(timeout_s=10)
            finally:
                await server.stop(1)
                service.close()
    assert source == FROM_STORE and readings == readings_of(objectives, made)
