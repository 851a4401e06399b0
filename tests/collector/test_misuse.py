"""Misuse over the wire gets a typed answer: malformed Control requests are INVALID_ARGUMENT or
NOT_FOUND (never UNKNOWN), oversized Hello fields are refused, and a stopping collector ends its
streams after their acks instead of holding them for the whole grace period."""

from __future__ import annotations

import grpc
import pytest

from siliconbench.collector.ingest import MAX_ID_CHARS
from siliconbench.collector.server import build_server
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb
from tests.collector.test_service import open_stream


@pytest.fixture
async def served(store):
    srv, service, port = await build_server(store, "127.0.0.1:0")
    yield service, port
    await srv.stop(1)


@pytest.mark.parametrize("request_fields", [
    {"plan_json": "[1, 2]"},
    {"plan_json": "{not json"},
    {"plan_json": '"a string"'},
    {"plan_json": '{"workers": 100000}'},
    {"plan_json": "{}", "start_delay_s": float("inf")},
    {"plan_json": "{}", "start_delay_s": float("nan")},
    {"plan_json": "{}", "start_delay_s": -5.0},
    {"plan_json": "{}", "start_at_unix_ns": 2**62},
    {"plan_json": "{}", "run_id": "r" * (MAX_ID_CHARS + 1)},
    {"plan_json": "{}", "run_id": "line\nbreak"},
    {"plan_json": "{}", "selector": {"colour": "blue"}},
])
async def test_a_malformed_start_is_invalid_argument_in_one_line(served, request_fields):
    _, port = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ControlStub(channel).StartRun(pb.StartRunRequest(**request_fields))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() and "\n" not in refused.value.details()


@pytest.mark.parametrize("run_id, code", [("", grpc.StatusCode.INVALID_ARGUMENT),
                                          ("no-such-run", grpc.StatusCode.NOT_FOUND)])
async def test_cancelling_no_run_or_an_unknown_one_is_refused(served, run_id, code):
    _, port = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ControlStub(channel).CancelRun(pb.CancelRunRequest(run_id=run_id))
    assert refused.value.code() == code


@pytest.mark.parametrize("field", ["scenario", "node_name", "instance_type", "accelerator_model", "agent_version"])
async def test_an_oversized_hello_field_is_refused_by_name(served, unique_id, field):
    _, port = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = pb_grpc.TelemetryStub(channel).Stream()
        hello = pb.Hello(agent_id=f"agent-{unique_id}", **{field: "x" * 1_000_000})
        await call.write(pb.AgentMessage(hello=hello))
        reply = await call.read()
    assert reply.error.code == pb.ERROR_CODE_INVALID
    assert reply.error.message == f"Hello.{field} is 1000000 characters long; the limit is {MAX_ID_CHARS}"


async def test_draining_ends_an_idle_stream_with_ok_after_its_acks(served, unique_id):
    service, port = served
    channel, call = await open_stream(port, f"agent-{unique_id}")
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"agent-{unique_id}/boot/1")))
    assert (await call.read()).ack.seq == 1
    service.drain()
    assert await call.read() == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    await channel.close()
