"""The shipper against a collector that is away, slow or back: spool, back-pressure, replay, drain."""

from __future__ import annotations

import asyncio
import errno
import re
import time

import grpc
import pytest

from siliconbench.agent.errors import DeliveryIncomplete
from siliconbench.agent import batcher as batcher_module
from siliconbench.agent import uplink as uplink_module
from siliconbench.agent.shipper import Shipper
from siliconbench.agent.uplink import FIRST_BACKOFF_S
from siliconbench.agent.spool import Entry, Spool
from siliconbench.collector.server import build_server
from siliconbench.core.wire import pb
from tests.collector.test_service import count, record


def shipper_for(port: int, agent_id: str, spool_dir, **kwargs) -> Shipper:
    max_bytes = kwargs.pop("max_bytes", 512 * 2**20)
    return Shipper(f"127.0.0.1:{port}", pb.Hello(agent_id=agent_id), Spool.open(spool_dir, agent_id, max_bytes),
                   **kwargs)


async def test_batches_wait_in_the_spool_until_the_collector_comes_and_then_arrive_once(store, unique_id, tmp_path, held_port):
    port = held_port
    shipper = shipper_for(port, f"agent-{unique_id}", tmp_path, max_items=5)
    shipper.start()
    for i in range(23):
        shipper.add(record(unique_id, i))
    await shipper.flush()
    assert len(list(tmp_path.glob("*.batch"))) == 5
    srv, service, _ = await build_server(store, f"127.0.0.1:{port}")
    try:
        await shipper.close(timeout_s=30)
    finally:
        await srv.stop(1)
        service.close()
    assert count(store, "requests", unique_id) == 23
    assert not list(tmp_path.glob("*.batch"))


async def test_a_sealed_batch_parses_as_the_batch_of_its_items_with_its_seq_and_id(unique_id, tmp_path, held_port):
    shipper = shipper_for(held_port, "agent-a", tmp_path)
    run = pb.RunEvent(run_id=unique_id, phase=pb.PHASE_START, time_unix_ns=1)
    step = pb.StepEvent(run_id=unique_id, step=0, requests=2)
    requests = [record(unique_id, 0), record(unique_id, 1, error_class="timeout", ttft_ns=-1)]
    samples = [pb.DeviceSample(run_id=unique_id, source="host", device="host", values={"cpu_pct": 12.5})]
    metrics = [pb.ServerMetric(run_id=unique_id, step=0, name="vllm:num_requests_running", start_value=1.0,
                               end_value=3.0)]
    shipper.add(run)
    shipper.add(requests[0])
    shipper.add_samples(samples)
    shipper.add(requests[1])
    shipper.add(metrics[0])
    shipper.add(step)
    await shipper.flush()
    [entry] = shipper.spool.entries.values()
    batch = pb.Batch.FromString(shipper.spool.read(entry))
    assert batch == pb.Batch(seq=entry.seq, batch_id=f"agent-a/{batch.batch_id.split('/')[1]}/{entry.seq}",
                             runs=[run], steps=[step], requests=requests, samples=samples, server_metrics=metrics)
    shipper.spool.close()


async def test_a_steps_event_seals_the_open_batch_with_the_steps_last_records(unique_id, tmp_path, held_port):
    shipper = shipper_for(held_port, "agent-a", tmp_path)  # not started: no batch is sealed by age
    last, step, next_step = record(unique_id, 0), pb.StepEvent(run_id=unique_id, step=0, requests=1), record(unique_id, 1)
    for item in (last, step, next_step):
        shipper.add(item)
    await shipper.flush()
    batches = [pb.Batch.FromString(shipper.spool.read(entry)) for _, entry in sorted(shipper.spool.entries.items())]
    assert [(list(b.requests), list(b.steps)) for b in batches] == [([last], [step]), ([next_step], [])]
    shipper.spool.close()


async def test_a_batch_the_disk_refuses_is_held_in_memory_and_delivered(store, unique_id, tmp_path, caplog, held_port):
    port = held_port
    shipper = shipper_for(port, f"agent-{unique_id}", tmp_path)
    (tmp_path / f"{1:020d}.batch").mkdir()  # the first batch's file cannot be put in place
    shipper.add(record(unique_id, 0))
    await shipper.flush()
    assert "cannot write batch 1" in caplog.text and shipper.pending == 1
    srv, service, _ = await build_server(store, f"127.0.0.1:{port}")
    try:
        shipper.start()
        await shipper.close(timeout_s=20)
    finally:
        await srv.stop(1)
        service.close()
    assert count(store, "requests", unique_id) == 1


async def test_close_leaves_unacknowledged_batches_in_the_spool_and_says_where(unique_id, tmp_path, held_port):
    shipper = shipper_for(held_port, f"agent-{unique_id}", tmp_path)
    shipper.start()
    shipper.add(record(unique_id, 0))
    with pytest.raises(DeliveryIncomplete, match=f"^1 requests served, 0 stored, 0 set aside, 1 still in the spool: "
                                                 f".* stay in the spool {tmp_path}"):
        await shipper.close(timeout_s=0.5)
    assert len(list(tmp_path.glob("*.batch"))) == 1


async def test_a_restarted_agent_replays_the_previous_spool_first(store, unique_id, tmp_path, held_port):
    agent = f"agent-{unique_id}"
    first = shipper_for(held_port, agent, tmp_path)
    first.start()
    first.add(record(unique_id, 0))
    with pytest.raises(DeliveryIncomplete):
        await first.close(timeout_s=0.2)
    srv, service, port = await build_server(store, "127.0.0.1:0")
    try:
        second = shipper_for(port, agent, tmp_path)
        second.start()
        second.add(record(unique_id, 1))
        await second.close(timeout_s=20)
    finally:
        await srv.stop(1)
        service.close()
    assert count(store, "requests", unique_id) == 2


@pytest.mark.timing
async def test_wait_for_room_blocks_while_the_spool_is_full_and_returns_after_acks(store, unique_id, tmp_path, held_port):
    port = held_port
    shipper = shipper_for(port, f"agent-{unique_id}", tmp_path, max_items=1, max_bytes=2000)
    shipper.start()
    for i in range(30):
        shipper.add(record(unique_id, i))
    waiter = asyncio.create_task(shipper.wait_for_room())
    await asyncio.sleep(0.3)
    assert not waiter.done()
    srv, service, _ = await build_server(store, f"127.0.0.1:{port}")
    try:
        await asyncio.wait_for(waiter, 20)
        await shipper.close(timeout_s=20)
    finally:
        await srv.stop(1)
        service.close()
    assert count(store, "requests", unique_id) == 30


async def test_a_batch_the_collector_rejects_is_quarantined_not_retried(store, unique_id, tmp_path):
    srv, service, port = await build_server(store, "127.0.0.1:0")
    try:
        shipper = shipper_for(port, f"agent-{unique_id}", tmp_path)
        shipper.start()
        shipper.add(record(unique_id, 0, start_unix_ns=5))  # 1970: not a plausible time
        with pytest.raises(DeliveryIncomplete, match="1 requests served, 0 stored, 1 set aside, 0 still in the "
                                                     "spool: the collector refused 1 records"):
            await shipper.close(timeout_s=20)
    finally:
        await srv.stop(1)
        service.close()
    assert shipper.set_aside == 1 and shipper.requests_set_aside == 1
    assert len(list((tmp_path / "quarantine").glob("*.batch"))) == 1


def distinct(store, run_id: str) -> tuple[int, int]:
    """(rows, distinct request ids) of the run's requests: equal when each is stored once."""
    return store.query("SELECT count(), uniqExact(request_id) FROM {db}.requests WHERE run_id = {r:String}",
                       {"r": run_id}).result_rows[0]


async def test_a_refused_batch_is_split_until_only_the_bad_records_are_set_aside(store, unique_id, tmp_path):
    srv, service, port = await build_server(store, "127.0.0.1:0")
    bad = {7, 13}  # 1970 start times: not plausible, so any batch holding one is refused whole
    try:
        shipper = shipper_for(port, f"agent-{unique_id}", tmp_path, max_items=20)
        shipper.start()
        for i in range(20):
            shipper.add(record(unique_id, i, **({"start_unix_ns": 5} if i in bad else {})))
        for i in range(20, 25):  # the batch behind the refused one
            shipper.add(record(unique_id, i))
        with pytest.raises(DeliveryIncomplete, match="25 requests served, 23 stored, 2 set aside, 0 still"):
            await shipper.close(timeout_s=30)
    finally:
        await srv.stop(1)
        service.close()
    assert distinct(store, unique_id) == (23, 23)
    assert (shipper.served, shipper.stored, shipper.set_aside, shipper.requests_set_aside) == (25, 23, 2, 2)
    quarantine = Spool(tmp_path / "quarantine", "x")
    kept = [pb.Batch.FromString(quarantine.read(Entry(int(p.stem), 0))) for p in quarantine.directory.glob("*.batch")]
    assert sorted(r.request_id for b in kept for r in b.requests) == sorted(f"{unique_id}/0/{i}" for i in bad)


async def test_a_batch_over_the_message_limit_is_split_and_an_item_over_it_alone_is_set_aside(
        store, unique_id, tmp_path, monkeypatch):
    agent = f"agent-{unique_id}"
    spool = Spool.open(tmp_path, agent)  # as an older agent left it: one batch of 10 records, no size bound
    records = [record(unique_id, i) for i in range(10)]
    huge = record(unique_id, 10, error_message="x" * 4000)
    spool.write(1, pb.Batch(seq=1, batch_id=f"{agent}/old/1", requests=records).SerializeToString())
    spool.write(2, pb.Batch(seq=2, batch_id=f"{agent}/old/2", requests=[huge]).SerializeToString())
    spool.close()
    monkeypatch.setattr(uplink_module, "MAX_MESSAGE_BYTES", 3 * records[0].ByteSize())  # 2 records a message
    srv, service, port = await build_server(store, "127.0.0.1:0")
    try:
        shipper = shipper_for(port, agent, tmp_path)
        shipper.start()
        with pytest.raises(DeliveryIncomplete, match="refused 1 records"):
            await shipper.close(timeout_s=30)
    finally:
        await srv.stop(1)
        service.close()
    assert distinct(store, unique_id) == (10, 10)
    assert shipper.set_aside == 1 and len(list((tmp_path / "quarantine").glob("*.batch"))) == 1


async def test_the_open_batch_is_sealed_before_it_would_pass_the_transport_limit(unique_id, tmp_path, monkeypatch, held_port):
    monkeypatch.setattr(batcher_module, "MAX_BATCH_BYTES", 1000)
    shipper = shipper_for(held_port, "agent-a", tmp_path)
    for i in range(30):
        shipper.add(record(unique_id, i))
    await shipper.flush()
    sizes = [len(shipper.spool.read(e)) for e in shipper.spool.entries.values()]
    assert len(sizes) > 1 and max(sizes) <= 1000 + 64
    assert sum(len(pb.Batch.FromString(shipper.spool.read(e)).requests) for e in shipper.spool.entries.values()) == 30
    shipper.spool.close()


@pytest.mark.timing
async def test_a_disk_that_refuses_writes_pauses_the_load_until_it_takes_them_again(
        store, unique_id, tmp_path, monkeypatch, caplog, held_port):
    """ENOSPC injected where the spool writes its files (the disk fills during a collector outage)."""
    full = True
    put = Spool._put

    def put_or_enospc(self, path, data):
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        put(self, path, data)

    monkeypatch.setattr(Spool, "_put", put_or_enospc)
    port = held_port  # no collector yet
    shipper = shipper_for(port, f"agent-{unique_id}", tmp_path, max_items=5)
    shipper.start()
    for i in range(12):
        shipper.add(record(unique_id, i))
    await shipper.flush()
    waiter = asyncio.create_task(shipper.wait_for_room())
    await asyncio.sleep(0.6)  # several retries of the disk
    assert not waiter.done() and "No space left on device" in (shipper.disk_fault or "")
    assert "No space left on device" in (shipper.pause_reason() or "")  # what the progress line shows
    assert "the load pauses before its next request" in caplog.text
    assert not list(tmp_path.glob("*.batch")) and shipper.pending == 3
    bound, shipper.spool.max_bytes = shipper.spool.max_bytes, shipper.spool.bytes  # memory held at the bound
    shipper.add_samples([pb.DeviceSample(run_id=unique_id, source="host", device="host", values={"cpu_pct": 1.0})])
    assert shipper.samples_dropped == 1 and "device samples are dropped" in caplog.text
    shipper.spool.max_bytes = bound
    full = False
    await asyncio.wait_for(waiter, 20)
    assert shipper.disk_fault is None and shipper.pause_reason() is None and len(list(tmp_path.glob("*.batch"))) == 3
    srv, service, _ = await build_server(store, f"127.0.0.1:{port}")
    try:
        await shipper.close(timeout_s=30)
    finally:
        await srv.stop(1)
        service.close()
    assert distinct(store, unique_id) == (12, 12)


async def test_a_pause_on_a_full_disk_lifts_once_the_collector_acknowledged_every_held_batch(
        store, unique_id, tmp_path, monkeypatch, caplog):
    """The disk stays full throughout: what the agent held in memory is delivered and memory is free, so the
    load goes on, each new batch held in memory until it is acknowledged."""
    def enospc(self, path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Spool, "_put", enospc)
    srv, service, port = await build_server(store, "127.0.0.1:0")
    shipper = shipper_for(port, f"agent-{unique_id}", tmp_path, max_items=5)
    try:
        for i in range(10):
            shipper.add(record(unique_id, i))
        await shipper.flush()
        assert shipper.pause_reason() is not None and "No space left on device" in shipper.pause_reason()
        waiter = asyncio.create_task(shipper.wait_for_room())
        shipper.start()
        await asyncio.wait_for(waiter, 20)  # every held batch acknowledged: the load resumes
        assert shipper.pending == 0 and shipper.pause_reason() is None
        assert "No space left on device" in (shipper.disk_fault or "")  # the disk still refuses writes
        assert "acknowledged every batch held in memory: the load resumes" in caplog.text
        shipper.add(record(unique_id, 10))
        await shipper.close(timeout_s=30)
    finally:
        await srv.stop(1)
        service.close()
    assert distinct(store, unique_id) == (11, 11)


class AcksOneThenFails:
    """A collector stand-in: each stream acknowledges one batch, then breaks (UNAVAILABLE)."""

    def __init__(self) -> None:
        self.streams = 0

    def handler(self) -> grpc.GenericRpcHandler:
        async def stream(requests, context):
            self.streams += 1
            await context.send_initial_metadata(())  # accepted, as the collector says it
            messages = aiter(requests)
            await anext(messages)  # the Hello
            batch = pb.AgentMessage.FromString(await anext(messages)).batch
            yield pb.CollectorMessage(ack=pb.Ack(seq=batch.seq)).SerializeToString()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "store went away")

        method = grpc.stream_stream_rpc_method_handler(stream)
        return grpc.method_handlers_generic_handler("siliconbench.telemetry.v1.Telemetry", {"Stream": method})


async def test_the_back_off_restarts_from_its_first_step_after_a_stream_that_was_acknowledged(unique_id, tmp_path,
                                                                                            caplog):
    caplog.set_level("WARNING", logger="siliconbench.agent.uplink")
    collector = AcksOneThenFails()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((collector.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    shipper = shipper_for(port, f"agent-{unique_id}", tmp_path, max_items=1)
    shipper.start()
    try:
        for i in range(6):
            shipper.add(record(unique_id, i))
        deadline = time.monotonic() + 20
        while shipper.pending and time.monotonic() < deadline:  # noqa: ASYNC110 - the shipper has no drained event
            await asyncio.sleep(0.05)
    finally:
        try:
            await shipper.close(timeout_s=2)
        except DeliveryIncomplete:
            pass  # the assertions below say what was left
        await server.stop(0)
    assert shipper.pending == 0 and collector.streams >= 6
    delays = [float(m) for m in re.findall(r"retrying in ([\d.]+) s", caplog.text)]
    assert len(delays) >= 5
    assert max(delays) <= FIRST_BACKOFF_S * 1.5 + 0.05  # never the doubled steps of one long outage
