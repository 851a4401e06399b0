"""`run status` over several collector replicas: one store, streams held by whichever replica."""

from __future__ import annotations

from siliconbench.collector import run_cli
from siliconbench.core.wire import pb


def reply(connected: set[str]) -> pb.RunStatusReply:
    running = pb.RunProgress(state=pb.RUN_STATE_RUNNING, step=1, steps_total=3)
    return pb.RunStatusReply(run_id="r", state=pb.RUN_STATE_RUNNING, nodes=[
        pb.NodeStatus(agent_id=agent, node_name=agent, progress=running, connected=agent in connected)
        for agent in ("node-a", "node-b", "node-c")])


def test_a_node_is_connected_when_any_replica_holds_its_stream(monkeypatch):
    replicas = {"10.0.0.1:50051": reply({"node-a"}), "10.0.0.2:50051": reply({"node-b"})}
    monkeypatch.setattr(run_cli, "_addresses", lambda collector: list(replicas))
    monkeypatch.setattr(run_cli, "_call", lambda address, method, request: replicas[address])
    status = run_cli._status_once("collector:50051", "r")
    assert {n.agent_id: n.connected for n in status.nodes} == {"node-a": True, "node-b": True, "node-c": False}
    text = run_cli.render_status(status)
    assert "node-c" in text and "running*" in text.split("node-c")[1].splitlines()[0]
    assert "* not connected to any collector replica now" in text
