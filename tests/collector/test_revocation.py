"""A token removed from the tokens file ends the streams that use it: the next message a writing stream
sends is refused before it is stored, and a stream that sends nothing ends within the collector's
re-check interval (service.RECHECK_S, 1 s); the agent is told UNAUTHENTICATED with the reason."""

from __future__ import annotations

import grpc
import pytest

from siliconbench.collector.auth import TokenFile
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.wire import pb
from tests.collector.test_roles import bearer
from tests.collector.test_service import count, open_stream, record


@pytest.fixture
def tokens(tmp_path, unique_id):
    path = tmp_path / "tokens"
    path.write_text(f"revoked-soon agent=node-{unique_id}\nops-secret operator\n")
    return path


@pytest.fixture
async def port(store, tokens):
    srv, service, bound = await build_server(store, "127.0.0.1:0", ServerOptions(tokens=TokenFile(tokens)))
    yield bound
    await srv.stop(1)
    service.close()


def batch(unique_id: str, seq: int) -> pb.AgentMessage:
    return pb.AgentMessage(batch=pb.Batch(seq=seq, batch_id=f"{unique_id}/{seq}", requests=[record(unique_id, seq)]))


def revoke(tokens) -> None:
    tokens.write_text("ops-secret operator\n")  # another size: the re-read does not hang on the file's timestamp


async def test_a_writing_stream_stores_nothing_sent_after_its_token_is_revoked(store, port, tokens, unique_id):
    channel, call = await open_stream(port, f"node-{unique_id}", metadata=bearer("revoked-soon"))
    await call.write(batch(unique_id, 1))
    assert (await call.read()).ack.seq == 1
    revoke(tokens)
    await call.write(batch(unique_id, 2))  # sent at once: checked before it is read, before the re-check timer
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call.read()
    await channel.close()
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ended.value.details().startswith("credential no longer accepted: missing or wrong bearer token")
    assert count(store, "requests", unique_id) == 1


async def test_an_idle_stream_ends_once_its_token_is_revoked(port, tokens, unique_id):
    channel, call = await open_stream(port, f"node-{unique_id}", metadata=bearer("revoked-soon"))
    await call.write(batch(unique_id, 1))
    assert (await call.read()).ack.seq == 1
    revoke(tokens)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call.read()  # nothing sent: the collector's periodic re-check ends it
    await channel.close()
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "\n" not in ended.value.details()


async def test_a_token_rebound_to_another_agent_ends_the_stream(store, port, tokens, unique_id):
    channel, call = await open_stream(port, f"node-{unique_id}", metadata=bearer("revoked-soon"))
    await call.write(batch(unique_id, 1))
    assert (await call.read()).ack.seq == 1
    tokens.write_text(f"revoked-soon agent=elsewhere-{unique_id}\nops-secret operator\n")
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call.read()
    await channel.close()
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert f"may write only as agent 'elsewhere-{unique_id}'" in ended.value.details()
    assert count(store, "requests", unique_id) == 1
