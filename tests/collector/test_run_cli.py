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


def test_a_start_reaches_every_replica_under_the_id_the_first_one_gave(monkeypatch, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("concurrency: [1]\nrequests_per_step: 2\nrepetitions: 1\n")
    sent: list[tuple[str, str, str]] = []

    def call(address, method, request):
        if method == "ListAgents":
            return pb.ListAgentsReply(agents=[pb.Hello(agent_id=f"node@{address}")])
        sent.append((address, method, request.run_id))
        return pb.StartRunReply(run_id=request.run_id or "run-1", agents=[f"node@{address}"])

    monkeypatch.setattr(run_cli, "_addresses", lambda collector: ["10.0.0.1:50051", "10.0.0.2:50051"])
    monkeypatch.setattr(run_cli, "_call", call)
    run_cli.start(plan=str(plan), selector=None, scenario=None, start_delay_s=0.0, min_agents=2, wait_s=0.0,
                  collector="collector:50051")
    assert sent == [("10.0.0.1:50051", "StartRun", ""), ("10.0.0.2:50051", "StartRun", "run-1")]


def test_status_shows_the_commands_a_node_has_not_acknowledged_on_any_replica(monkeypatch):
    first, second = reply({"node-a"}), reply({"node-b"})
    first.nodes[1].unacknowledged.append("cancel")
    second.nodes[2].unacknowledged.extend(["start", "cancel"])
    replicas = {"10.0.0.1:50051": first, "10.0.0.2:50051": second}
    monkeypatch.setattr(run_cli, "_addresses", lambda collector: list(replicas))
    monkeypatch.setattr(run_cli, "_call", lambda address, method, request: replicas[address])
    status = run_cli._status_once("collector:50051", "r")
    assert {n.agent_id: list(n.unacknowledged) for n in status.nodes} == {
        "node-a": [], "node-b": ["cancel"], "node-c": ["start", "cancel"]}
    lines = {line.split()[0]: line for line in run_cli.render_status(status).splitlines()[2:] if line.startswith("node")}
    assert lines["node-b"].endswith("[cancel not acknowledged]")
    assert lines["node-c"].endswith("[start and cancel not acknowledged]")
    assert not lines["node-a"].endswith("acknowledged]")
