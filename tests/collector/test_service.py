"""The Telemetry service over real gRPC on loopback, storing into chDB."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from agent.shipper import Shipper
from collector.server import build_server
from siliconbench.telemetry.v1 import telemetry_pb2 as pb
from siliconbench.telemetry.v1 import telemetry_pb2_grpc as pb_grpc


def record(run_id: str, i: int, **overrides) -> pb.RequestRecord:
    fields = dict(run_id=run_id, request_id=f"{run_id}/0/{i}", step=0, concurrency=1, start_unix_ns=time.time_ns(),
                  ttft_ns=1_000_000, e2e_ns=5_000_000, chunk_offset_ns=[1_000_000, 3_000_000],
                  chunk_tokens=[1, 1], prompt_tokens=8, output_tokens=2, http_status=200, finish_reason="length")
    fields.update(overrides)
    return pb.RequestRecord(**fields)


def count(store, table: str, run_id: str) -> int:
    return store.query(f"SELECT count() FROM {{db}}.{table} WHERE run_id = {{r:String}}", {"r": run_id}).result_rows[0][0]


async def open_stream(port: int, agent_id: str):
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = pb_grpc.TelemetryStub(channel).Stream()
    await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=agent_id, node_name=agent_id)))
    return channel, call


@pytest.fixture
async def server(store):
    srv, service, port = await build_server(store, "127.0.0.1:0")
    yield port
    await srv.stop(1)
    service.close()


async def test_shipper_delivers_every_record_and_the_collector_acks_after_storing(store, server, unique_id):
    shipper = Shipper(f"127.0.0.1:{server}", pb.Hello(agent_id=f"agent-{unique_id}"), max_items=7)
    shipper.start()
    for i in range(50):
        shipper.add_request(record(unique_id, i))
    await shipper.close(timeout_s=20)
    assert not shipper.pending
    assert count(store, "requests", unique_id) == 50


async def test_replayed_batch_is_stored_once(store, server, unique_id):
    channel, call = await open_stream(server, f"agent-{unique_id}")
    batch = pb.Batch(seq=1, batch_id=f"agent-{unique_id}/boot/1", requests=[record(unique_id, i) for i in range(3)])
    for _ in range(2):  # the same batch again, as after a reconnect
        await call.write(pb.AgentMessage(batch=batch))
        reply = await call.read()
        assert reply.ack.seq == 1
    await call.done_writing()
    await channel.close()
    assert count(store, "requests", unique_id) == 3


async def test_invalid_batch_gets_a_typed_error_and_nothing_is_stored(store, server, unique_id):
    channel, call = await open_stream(server, f"agent-{unique_id}")
    bad = record(unique_id, 0, e2e_ns=-5)
    good = record(unique_id, 1)
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"{unique_id}/1", requests=[good, bad])))
    reply = await call.read()
    assert reply.error.code == pb.ERROR_CODE_INVALID and "negative duration" in reply.error.message
    # the stream stays usable for the next, valid batch
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=2, batch_id=f"{unique_id}/2", requests=[good])))
    assert (await call.read()).ack.seq == 2
    await call.done_writing()
    await channel.close()
    assert count(store, "requests", unique_id) == 1


async def test_stream_without_hello_is_refused(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server}") as channel:
        call = pb_grpc.TelemetryStub(channel).Stream()
        await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id="x/1")))
        reply = await call.read()
        assert reply.error.code == pb.ERROR_CODE_PROTOCOL
