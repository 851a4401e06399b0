"""Fleet membership across stream-age reconnects, in process over loopback: a member whose stream
ends at its maximum age and reconnects stays a member with its state (status, run state and cancel
follow it), only an agent that was not a member at the start is late, and an ended run leaves memory, as does
one whose members fell silent without ending it."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from siliconbench.collector import fleet
from siliconbench.collector.runs import LATE_DETAIL
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb

RECONNECTS = 3


@pytest.fixture
async def served(store):
    # These stand-in agents offer no batches, so each read of theirs waits for a cover (collector/budget.py):
    # a 64 MiB budget covers two at once (16 MiB each within the half such streams share), so two idle
    # stand-ins never wait on each other; flow control itself is tested in test_budget.py.
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(max_bytes_in_flight=64 * 2**20))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield service, port, pb_grpc.ControlStub(channel)
    await channel.close()
    await srv.stop(1)


async def connect(port: int, agent_id: str, scenario: str, *first: pb.AgentMessage):
    """A stream that says Hello and then `first` at once (before the stream can reach its age)."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = pb_grpc.TelemetryStub(channel).Stream()
    await call.write(pb.AgentMessage(hello=pb.Hello(agent_id=agent_id, node_name=agent_id, scenario=scenario)))
    for message in first:
        await call.write(message)
    return channel, call


def progress(run_id: str, state: pb.RunState, step: int) -> pb.AgentMessage:
    return pb.AgentMessage(progress=pb.RunProgress(run_id=run_id, state=state, step=step, steps_total=9))


async def command(call, kind: str) -> pb.Command:
    """The next command of `kind` on the stream; lease renewals, and commands this test agent has not
    acknowledged (sent again on each new stream), come before it."""
    while (message := await call.read()) != grpc.aio.EOF:
        if message.command.WhichOneof("kind") == kind:
            return message.command
    raise AssertionError(f"the stream ended before a {kind} command")


async def until_ended(call) -> None:
    """Read to the end of a stream the collector ends at its age; it ends with OK."""
    while await call.read() != grpc.aio.EOF:
        pass
    assert await call.code() == grpc.StatusCode.OK


async def status_when(control, run_id: str, holds) -> pb.RunStatusReply:
    """The run's status once `holds(nodes by agent id)` (progress is stored after the stream reads it)."""
    while True:
        try:
            reply = await control.RunStatus(pb.RunStatusRequest(run_id=run_id))
            if holds({n.agent_id: n for n in reply.nodes}):
                return reply
        except grpc.aio.AioRpcError as exc:  # no member recorded yet
            assert exc.code() == grpc.StatusCode.NOT_FOUND
        await asyncio.sleep(0.02)


async def connected(control, agent_id: str) -> None:
    """Once the collector lists the agent (its Hello is stored, then the stream attaches)."""
    while True:
        if (await control.ListAgents(pb.ListAgentsRequest(selector={"agent": agent_id}))).agents:
            return
        await asyncio.sleep(0.02)


async def report(port: int, control, agent: str, scenario: str, run_id: str, step: int):
    """As an agent does: a new stream, its latest progress on it, and again on the next stream if this one
    ended before the report was read (this stand-in offers no batches, so its reads wait for a cover that
    an idle stream may hold until it is ended: collector/budget.py). The stream, and the status once stored."""
    while True:
        channel, call = await connect(port, agent, scenario, progress(run_id, pb.RUN_STATE_RUNNING, step))
        try:
            reply = await asyncio.wait_for(
                status_when(control, run_id, lambda nodes: nodes[agent].progress.step == step), 5)
            return channel, call, reply
        except TimeoutError:
            await channel.close()


async def test_a_member_stays_a_member_across_reconnects_and_cancel_reaches_it(served, unique_id):
    service, port, control = served
    agent, late, scenario = f"member-{unique_id}", f"late-{unique_id}", f"S{unique_id}"
    channel, call = await connect(port, agent, scenario)
    await connected(control, agent)
    started = await control.StartRun(pb.StartRunRequest(plan_json="{}", selector={"scenario": scenario},
                                                        min_agents=1))
    run_id = started.run_id
    assert list(started.agents) == [agent]
    assert (await command(call, "start")).start.run_id == run_id
    late_channel, _ = await connect(port, late, scenario)  # was not a member at the start
    await status_when(control, run_id, lambda nodes: late in nodes)
    # From here streams end after about 0.3 s, as SILICONBENCH_MAX_STREAM_AGE_S=300 does after 300 s in a
    # deployment (the age applies to streams opened after it is set); the first one the agent ends itself.
    service._max_stream_age_s = 0.3
    await call.done_writing()
    for step in range(1, RECONNECTS + 1):
        await until_ended(call)  # at its age, after handling what it read
        await channel.close()
        if step == RECONNECTS:
            service._max_stream_age_s = 0.0  # the last stream stays open, so the cancel below finds it there
        channel, call, reply = await report(port, control, agent, scenario, run_id, step)
        nodes = {n.agent_id: n for n in reply.nodes}
        assert reply.state == pb.RUN_STATE_RUNNING and nodes[agent].progress.state == pb.RUN_STATE_RUNNING
        assert nodes[agent].progress.detail != LATE_DETAIL and nodes[late].progress.detail == LATE_DETAIL
    cancelled = await control.CancelRun(pb.CancelRunRequest(run_id=run_id))
    assert cancelled.agents == 1
    assert (await command(call, "cancel")).cancel.run_id == run_id  # on the member's newest stream
    await call.write(progress(run_id, pb.RUN_STATE_CANCELLED, RECONNECTS))
    reply = await status_when(control, run_id, lambda nodes: nodes[agent].progress.state == pb.RUN_STATE_CANCELLED)
    assert reply.state == pb.RUN_STATE_CANCELLED
    assert run_id not in service.fleet.active()
    for ch in (channel, late_channel):
        await ch.close()


async def test_a_run_every_member_finished_leaves_memory(served, unique_id):
    service, port, control = served
    scenario = f"F{unique_id}"
    agents = [f"agent-{i}-{unique_id}" for i in range(2)]
    streams = [await connect(port, agent, scenario) for agent in agents]
    for agent in agents:
        await connected(control, agent)
    run_id = (await control.StartRun(pb.StartRunRequest(plan_json="{}", selector={"scenario": scenario},
                                                        min_agents=2))).run_id
    for agent, (_, call) in zip(agents, streams):
        assert run_id in service.fleet.active()
        await call.write(progress(run_id, pb.RUN_STATE_FINISHED, 9))
        await status_when(control, run_id, lambda nodes, a=agent: nodes[a].progress.state == pb.RUN_STATE_FINISHED)
    assert run_id not in service.fleet.active()
    for channel, _ in streams:
        await channel.close()


class ShiftedClock:
    """The time module, with time_ns moved `shift_ns` ahead."""

    def __init__(self) -> None:
        self.shift_ns = 0

    def __getattr__(self, name: str):
        return getattr(time, name)

    def time_ns(self) -> int:
        return time.time_ns() + self.shift_ns


async def test_a_run_whose_member_died_without_a_final_word_leaves_memory_once_silent(served, unique_id, monkeypatch):
    service, port, control = served
    clock = ShiftedClock()
    monkeypatch.setattr(fleet, "time", clock)
    scenario, silent_ns = f"D{unique_id}", fleet.FORGET_SILENT_RUN_NS
    agents = [f"agent-{i}-{unique_id}" for i in range(2)]
    (talking_channel, talking), (dead_channel, _) = [await connect(port, agent, scenario) for agent in agents]
    for agent in agents:
        await connected(control, agent)
    run_id = (await control.StartRun(pb.StartRunRequest(plan_json="{}", selector={"scenario": scenario},
                                                        min_agents=2))).run_id
    await dead_channel.close()  # dies running, without a final state
    clock.shift_ns = silent_ns // 2
    await talking.write(progress(run_id, pb.RUN_STATE_RUNNING, 1))
    await status_when(control, run_id, lambda nodes: nodes[agents[0]].progress.step == 1)
    clock.shift_ns = silent_ns * 6 // 5  # long past the start, but a member spoke lately
    assert run_id in service.fleet.active()
    await talking.write(progress(run_id, pb.RUN_STATE_FINISHED, 9))
    await status_when(control, run_id, lambda nodes: nodes[agents[0]].progress.state == pb.RUN_STATE_FINISHED)
    assert run_id in service.fleet.active()  # the dead member never said it ended
    clock.shift_ns = silent_ns * 8 // 5
    assert run_id not in service.fleet.active()
    await talking_channel.close()
