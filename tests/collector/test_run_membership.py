"""An authenticated agent writes only into runs it belongs to: its own runs (no other agent has written
them) and the fleet runs it was made a member of. A batch for any other run is refused as invalid (the
agent sets it aside) and nothing of it is stored."""

from __future__ import annotations

import datetime as dt

import pytest

from siliconbench.collector.auth import TokenFile
from siliconbench.collector.schema import RUN_NODES
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.wire import pb
from tests.collector import rows
from tests.collector.test_roles import bearer
from tests.collector.test_service import count, open_stream, record


@pytest.fixture
async def port(store, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("a-secret agent=node-a\nb-secret agent=node-b\n")
    srv, service, bound = await build_server(store, "127.0.0.1:0", ServerOptions(tokens=TokenFile(tokens)))
    yield bound
    await srv.stop(1)
    service.close()


async def send(port: int, agent: str, run_id: str, seq: int = 1) -> pb.CollectorMessage:
    channel, call = await open_stream(port, agent, metadata=bearer(f"{agent[-1]}-secret"))
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=seq, batch_id=f"{agent}/{run_id}/{seq}",
                                                    requests=[record(run_id, seq)])))
    reply = await call.read()
    await channel.close()
    return reply


def member_of(store, run_id: str, agent: str) -> None:
    """As the collector records a fleet run's members before it tells them to start."""
    now = dt.datetime.now(dt.timezone.utc)
    store.insert("run_nodes", [RUN_NODES.row(run_id=run_id, agent_id=agent, node_name=agent, instance_type="",
                                             scenario="", role="member", plan_json="{}", selector="{}",
                                             start_at=now, created=now)], "")


async def test_an_agent_writes_into_a_new_run_of_its_own(store, port, unique_id):
    assert (await send(port, "node-a", unique_id)).ack.seq == 1
    assert count(store, "requests", unique_id) == 1


async def test_an_agent_cannot_write_into_another_agents_run(store, port, unique_id):
    store.insert("runs", [rows.run(unique_id, "node-a")], f"r/{unique_id}")
    reply = await send(port, "node-b", unique_id)
    assert reply.error.code == pb.ERROR_CODE_INVALID
    assert f"run {unique_id!r} belongs to agent 'node-a'" in reply.error.message
    assert count(store, "requests", unique_id) == 0


async def test_only_members_write_into_a_fleet_run(store, port, unique_id):
    member_of(store, unique_id, "node-a")
    refused = await send(port, "node-b", unique_id)
    assert refused.error.code == pb.ERROR_CODE_INVALID
    assert f"not a member of fleet run {unique_id!r}" in refused.error.message
    assert (await send(port, "node-a", unique_id, seq=2)).ack.seq == 2
    assert count(store, "requests", unique_id) == 1
