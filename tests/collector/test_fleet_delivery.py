"""Fleet commands reach every member while streams come and go, over real gRPC on loopback: agents
(a Shipper and a FleetRunner each, as `siliconbench-agent daemon` wires them) against a collector that
ends every stream after a fraction of a second, so agents reconnect all the time. Starts and cancels
are kept per agent until acknowledged and sent again on its next stream; a member cut off from the
collector stops its load by itself when its lease ends."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import grpc
import pytest

from siliconbench.agent.fleet import FleetRunner
from siliconbench.agent.shipper import Shipper
from siliconbench.agent.spool import Spool
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb
from tests.collector.test_fleet_membership import command, connect, connected, status_when

CYCLES = 10
STREAM_AGE_S = 0.15
WAIT_S = 60  # a guard against a hang on a loaded machine, not a bound on speed


class Member:
    """An agent daemon's fleet side; its load sends "requests" (counted) until it is stopped."""

    def __init__(self, port: int, agent_id: str, scenario: str, spool_dir) -> None:
        hello = pb.Hello(agent_id=agent_id, node_name=agent_id, scenario=scenario)
        self.shipper = Shipper(f"127.0.0.1:{port}", hello, Spool.open(spool_dir, agent_id))
        self.reports: list[pb.RunProgress] = []
        self.runner = FleetRunner(self._load, self._report, ack=self.shipper.send_ack)
        self.shipper.take_commands(self.runner.on_command)
        self.requests: dict[str, int] = defaultdict(int)
        self.loading: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.stopped: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def _report(self, progress: pb.RunProgress) -> None:
        self.reports.append(progress)
        self.shipper.send_progress(progress)

    async def _load(self, plan, run_id: str, sink) -> None:
        self.loading[run_id].set()
        try:
            while True:
                self.requests[run_id] += 1
                await asyncio.sleep(0.005)  # one request to the target
        finally:
            self.stopped[run_id].set()

    async def close(self) -> None:
        await self.runner.close()
        await self.shipper.close(timeout_s=WAIT_S)


@pytest.fixture
async def collector(store):
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(max_stream_age_s=STREAM_AGE_S))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield srv, service, port, pb_grpc.ControlStub(channel)
    await channel.close()
    await srv.stop(0)


def agent_ids(unique_id: str, count: int) -> list[str]:
    return [f"agent-{i}-{unique_id}" for i in range(count)]


async def members(port: int, control, unique_id: str, tmp_path, count: int) -> tuple[str, list[Member]]:
    """`count` members, connected (they have nothing to send: they connect to hear commands)."""
    scenario = f"D{unique_id}"
    fleet = [Member(port, agent, scenario, tmp_path / agent) for agent in agent_ids(unique_id, count)]
    for member in fleet:
        member.shipper.start()
    for agent in agent_ids(unique_id, count):
        await within(connected(control, agent))
    return scenario, fleet


async def all_set(events: list[asyncio.Event]) -> None:
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), WAIT_S)


async def within(awaitable):
    return await asyncio.wait_for(awaitable, WAIT_S)


async def test_start_and_cancel_reach_every_member_in_every_cycle_while_streams_keep_ending(collector, unique_id,
                                                                                            tmp_path):
    _, _, port, control = collector
    scenario, fleet = await members(port, control, unique_id, tmp_path, 3)
    agents = sorted(agent_ids(unique_id, 3))
    try:
        for _ in range(CYCLES):
            started = await control.StartRun(pb.StartRunRequest(
                plan_json='{"concurrency": [1]}', selector={"scenario": scenario}, min_agents=3))
            assert sorted(started.agents) == agents  # an agent between two streams is still selected
            run_id = started.run_id
            await all_set([member.loading[run_id] for member in fleet])
            assert (await control.CancelRun(pb.CancelRunRequest(run_id=run_id))).agents == 3
            await all_set([member.stopped[run_id] for member in fleet])  # no member sends requests any more
            reply = await within(status_when(control, run_id, lambda nodes: all(
                n.progress.state == pb.RUN_STATE_CANCELLED and not n.unacknowledged for n in nodes.values())))
            assert reply.state == pb.RUN_STATE_CANCELLED
    finally:
        for member in fleet:
            await member.close()


async def test_a_member_cut_off_from_the_collector_stops_its_load_when_its_lease_ends(collector, unique_id,
                                                                                      tmp_path):
    srv, service, port, control = collector
    service.fleet.lease_s = 1.0
    scenario, [member] = await members(port, control, unique_id, tmp_path, 1)
    try:
        run_id = (await control.StartRun(pb.StartRunRequest(plan_json='{"concurrency": [1]}',
                                                            selector={"scenario": scenario}))).run_id
        await all_set([member.loading[run_id]])
        await srv.stop(0)  # the collector goes away: no more renewals
        await all_set([member.stopped[run_id]])
        last = member.reports[-1]
        assert (last.run_id, last.state) == (run_id, pb.RUN_STATE_FAILED)
        assert last.detail.startswith("stopped by itself: no lease renewal from the collector for 1 s")
    finally:
        await member.close()  # nothing spooled: it closes without the collector


async def test_a_command_is_sent_again_on_each_new_stream_until_acknowledged(collector, unique_id):
    _, service, port, control = collector
    service._max_stream_age_s = 0.0  # streams end only when the test ends them
    agent, scenario = f"raw-{unique_id}", f"R{unique_id}"
    channel, call = await connect(port, agent, scenario)
    await within(connected(control, agent))
    run_id = (await control.StartRun(pb.StartRunRequest(plan_json="{}", selector={"scenario": scenario}))).run_id
    first = await within(command(call, "start"))
    nodes = (await control.RunStatus(pb.RunStatusRequest(run_id=run_id))).nodes
    assert [list(n.unacknowledged) for n in nodes] == [["start"]]
    await channel.close()  # the stream breaks before the agent acknowledged
    channel, call = await connect(port, agent, scenario)
    again = await within(command(call, "start"))
    assert again == first and again.id != 0
    await call.write(pb.AgentMessage(command_ack=pb.CommandAck(id=again.id)))
    await within(status_when(control, run_id, lambda nodes: not nodes[agent].unacknowledged))
    await channel.close()
    channel, call = await connect(port, agent, scenario)  # acknowledged: not sent again
    await call.write(pb.AgentMessage(progress=pb.RunProgress(run_id=run_id, state=pb.RUN_STATE_RUNNING)))
    reply = await within(call.read())
    assert reply.command.WhichOneof("kind") == "renew" and reply.command.renew.run_id == run_id
    await control.CancelRun(pb.CancelRunRequest(run_id=run_id))
    cancel = await within(command(call, "cancel"))
    await within(status_when(control, run_id, lambda nodes: list(nodes[agent].unacknowledged) == ["cancel"]))
    await call.write(pb.AgentMessage(command_ack=pb.CommandAck(id=cancel.id)))
    await within(status_when(control, run_id, lambda nodes: not nodes[agent].unacknowledged))
    await channel.close()


async def test_the_lease_is_renewed_while_the_run_goes_on_and_not_once_it_is_cancelled(collector, unique_id):
    _, service, port, control = collector
    service._max_stream_age_s = 0.0
    agent, scenario = f"lease-{unique_id}", f"L{unique_id}"
    channel, _ = await connect(port, agent, scenario)
    await within(connected(control, agent))
    run_id = (await control.StartRun(pb.StartRunRequest(plan_json="{}", selector={"scenario": scenario}))).run_id
    running = pb.RunProgress(run_id=run_id, state=pb.RUN_STATE_RUNNING)
    renewal = await service.fleet.on_progress(agent, running)
    assert renewal is not None and renewal.renew == pb.LeaseRenewal(run_id=run_id, lease_s=service.fleet.lease_s)
    await control.CancelRun(pb.CancelRunRequest(run_id=run_id))
    assert await service.fleet.on_progress(agent, running) is None  # a member that missed the cancel runs out
    finished = pb.RunProgress(run_id="another-run", state=pb.RUN_STATE_FINISHED)
    assert await service.fleet.on_progress(agent, finished) is None
    await channel.close()


async def test_progress_sent_again_on_a_new_stream_is_stored_once(collector, store, unique_id, monkeypatch):
    """Counted as inserts: run_progress is a ReplacingMergeTree, whose merges may fold rows at any moment."""
    _, service, _, _ = collector
    inserted: list[list] = []
    insert = store.insert

    def counted(table: str, rows: list[list], dedup_token: str) -> None:
        if table == "run_progress":
            inserted.extend(rows)
        insert(table, rows, dedup_token)

    monkeypatch.setattr(store, "insert", counted)
    agent, run_id = f"repeat-{unique_id}", f"run-{unique_id}"
    ended = pb.RunProgress(run_id=run_id, state=pb.RUN_STATE_CANCELLED, time_unix_ns=1_700_000_000_000_000_000)
    for _ in range(3):  # as an agent does on each of three streams
        await service.fleet.on_progress(agent, ended)
    later = pb.RunProgress(run_id=run_id, state=pb.RUN_STATE_CANCELLED, time_unix_ns=ended.time_unix_ns + 1)
    await service.fleet.on_progress(agent, later)
    assert len(inserted) == 2
