"""A fleet run's node states as `run status` and `run report` show them: the latest progress of each
member, with silent members reported rather than left looking busy."""

from __future__ import annotations

import datetime as dt

from siliconbench.collector.runs import (CANCELLED, FAILED, FINISHED, LATE, LATE_DETAIL, PLANNED, RUNNING, NodeState,
                                         node_states, run_state)
from siliconbench.collector.schema import RUN_NODES, RUN_PROGRESS


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)


def member(run_id: str, agent: str, started_s_ago: float, role: str = "member") -> list:
    return RUN_NODES.row(run_id=run_id, agent_id=agent, node_name=f"node-{agent}", instance_type="p5.48xlarge",
                         scenario="A", role=role, plan_json="{}", selector="", start_at=ago(started_s_ago),
                         created=ago(started_s_ago))


def said(run_id: str, agent: str, state: str, s_ago: float, step: int = 0, detail: str = "") -> list:
    return RUN_PROGRESS.row(run_id=run_id, agent_id=agent, state=state, step=step, steps_total=6,
                            requests_done=10 * step, output_tokens_per_s=100.0, errors=0, detail=detail, time=ago(s_ago))


def statuses(store, run_id: str, members: list[list], progress: list[list]) -> dict[str, NodeState]:
    store.insert("run_nodes", members, f"n/{run_id}")
    store.insert("run_progress", progress, f"p/{run_id}")
    return {n.agent_id: n for n in node_states(store, run_id)}


def test_a_running_member_that_spoke_recently_is_running(store, unique_id):
    nodes = statuses(store, unique_id, [member(unique_id, "a", 100)],
                     [said(unique_id, "a", "running", 90, step=1), said(unique_id, "a", "running", 3, step=2)])
    a = nodes["a"]
    assert (a.state, a.step) == (RUNNING, 2)
    assert run_state(list(nodes.values())) == RUNNING


def test_a_running_member_silent_past_the_grace_has_dropped_out(store, unique_id):
    nodes = statuses(store, unique_id, [member(unique_id, "a", 100), member(unique_id, "b", 100)],
                     [said(unique_id, "a", "finished", 5, step=6), said(unique_id, "b", "running", 45, step=3)])
    b = nodes["b"]
    assert b.state == FAILED
    assert b.detail.startswith("dropped out: no word since ") and b.step == 3
    assert abs(b.last_word_ns / 1e9 - ago(45).timestamp()) < 5
    assert run_state(list(nodes.values())) == FAILED


def test_a_member_that_dropped_out_and_came_back_shows_its_latest_word(store, unique_id):
    nodes = statuses(store, unique_id, [member(unique_id, "a", 100)],
                     [said(unique_id, "a", "running", 60, step=1), said(unique_id, "a", "finished", 1, step=6)])
    assert nodes["a"].state == FINISHED
    assert run_state(list(nodes.values())) == FINISHED


def test_a_member_never_heard_from_after_the_start_grace_never_started(store, unique_id):
    nodes = statuses(store, unique_id, [member(unique_id, "a", 10), member(unique_id, "b", 40)], [])
    assert nodes["a"].state == PLANNED  # still within the grace
    assert nodes["b"].state == FAILED
    assert nodes["b"].detail.startswith("never started")


def test_a_late_joiner_is_listed_but_does_not_decide_the_run_state(store, unique_id):
    nodes = statuses(store, unique_id, [member(unique_id, "a", 100), member(unique_id, "z", 50, role="late")],
                     [said(unique_id, "a", "finished", 2, step=6)])
    assert (nodes["z"].role, nodes["z"].state, nodes["z"].detail) == (LATE, CANCELLED, LATE_DETAIL)
    assert run_state(list(nodes.values())) == FINISHED


def test_the_role_not_the_detail_decides_who_counts():
    """A member whose own detail reads like the late joiners' sentence still decides the run state."""
    def node(role: str, state: str, detail: str = "") -> NodeState:
        return NodeState(agent_id=role, node_name=role, instance_type="", scenario="A", role=role, state=state,
                         detail=detail)

    assert run_state([node("member", FAILED, LATE_DETAIL), node(LATE, CANCELLED, LATE_DETAIL)]) == FAILED
    assert run_state([node(LATE, CANCELLED, LATE_DETAIL)]) == "unknown"
