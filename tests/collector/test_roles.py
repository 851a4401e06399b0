"""Identity and roles: a token bound to an agent id writes only as that agent, an operator token
(and only one) starts and cancels runs, and a fleet plan reads datasets only from the agents'
datasets directory."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from siliconbench.collector.auth import AuthConfigError, Credential, TokenFile
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb
from tests.collector.test_service import count, open_stream, record


def bearer(token: str) -> tuple:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def tokens(tmp_path) -> Path:
    path = tmp_path / "tokens"
    path.write_text("# token, then what it grants\nnode-a-secret agent=node-a\nops-secret operator\nshared-secret\n")
    return path


@pytest.fixture
async def port(store, tokens):
    srv, service, bound = await build_server(store, "127.0.0.1:0", ServerOptions(tokens=TokenFile(tokens)))
    yield bound
    await srv.stop(1)
    service.close()


def test_each_line_grants_what_it_says(tokens):
    granted = TokenFile(tokens)
    assert granted.credential(bearer("node-a-secret")) == Credential(agent_id="node-a")
    assert granted.credential(bearer("ops-secret")) == Credential(operator=True)
    assert granted.credential(bearer("shared-secret")) == Credential(reserved=frozenset({"node-a"}))
    assert granted.credential(bearer("other")) is None and granted.credential(()) is None


def test_a_malformed_line_is_named_without_its_token(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("good\nvery-secret admin=yes\n")
    with pytest.raises(AuthConfigError, match="line 2 of") as refused:
        TokenFile(path)
    assert "very-secret" not in str(refused.value)


async def test_a_bound_token_cannot_write_as_another_agent(store, port, unique_id):
    channel, call = await open_stream(port, f"node-b-{unique_id}", metadata=bearer("node-a-secret"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    await channel.close()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may write only as agent 'node-a'" in refused.value.details()
    assert store.query("SELECT count() FROM {db}.nodes WHERE agent_id = {a:String}",
                       {"a": f"node-b-{unique_id}"}).result_rows[0][0] == 0


async def test_an_unbound_token_cannot_write_as_an_agent_with_a_token_of_its_own(store, port, unique_id):
    """Refused at its Hello, before any batch is read. (A batch written at once would race the refusal, and
    gRPC reports a write into an ended call as INTERNAL, losing the reason: grpc/grpc#36066.)"""
    channel, call = await open_stream(port, "node-a", metadata=bearer("shared-secret"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    await channel.close()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "agent 'node-a' has a token of its own" in refused.value.details()


async def test_a_bound_token_writes_as_its_own_agent(store, port, unique_id):
    channel, call = await open_stream(port, "node-a", metadata=bearer("node-a-secret"))
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"node-a/{unique_id}/1",
                                                    requests=[record(unique_id, 0)])))
    assert (await call.read()).ack.seq == 1
    await channel.close()
    assert count(store, "requests", unique_id) == 1


async def test_an_operator_token_writes_no_telemetry(port, unique_id):
    channel, call = await open_stream(port, f"agent-{unique_id}", metadata=bearer("ops-secret"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    await channel.close()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("token", ["node-a-secret", "shared-secret"])
async def test_an_agent_token_can_neither_start_nor_cancel_a_run(port, token):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        control = pb_grpc.ControlStub(channel)
        for call in (control.StartRun(pb.StartRunRequest(plan_json="{}"), metadata=bearer(token)),
                     control.CancelRun(pb.CancelRunRequest(run_id="any"), metadata=bearer(token))):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "operator token" in refused.value.details()
        assert (await control.ListAgents(pb.ListAgentsRequest(), metadata=bearer(token))) is not None


@pytest.mark.parametrize("dataset", ["/etc/passwd", "../../etc/passwd", "prompts/../../x.jsonl", "C:\\\\x.jsonl"])
async def test_a_fleet_plan_may_not_name_a_file_outside_the_datasets_directory(port, dataset):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ControlStub(channel).StartRun(
                pb.StartRunRequest(plan_json=f'{{"dataset": "{dataset}"}}'), metadata=bearer("ops-secret"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "relative to the agents' 'datasets/' directory" in refused.value.details()


async def test_a_fleet_plan_may_not_name_a_trace_outside_the_datasets_directory(port):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ControlStub(channel).StartRun(
                pb.StartRunRequest(plan_json='{"trace": {"file": "/etc/passwd", "format": "azure"}}'),
                metadata=bearer("ops-secret"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "relative to the agents' 'datasets/' directory" in refused.value.details()


async def test_the_operator_token_may_start_a_run(port, unique_id):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.ControlStub(channel).StartRun(
                pb.StartRunRequest(plan_json='{"dataset": "prompts/sharegpt.jsonl"}', selector={"agent": unique_id},
                                   min_agents=1), metadata=bearer("ops-secret"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # past the checks: no such agent connected
