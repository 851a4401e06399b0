"""Agentic sessions against the simulator: a tool's result comes back after its latency, forked sub-agents
begin with the whole history of their parent, spawned ones start fresh, and each join is one turn of the
parent that carries the sub-agents' answers; the graph is stored with the run's plan."""

from __future__ import annotations

import json
from collections import Counter

from siliconbench.core.plan import plan_from_mapping
from tests.agent.sessions.runs import SESSIONS, run_sessions, sessions_plan

GRAPH = [{"kind": "tool", "name": "search", "latency_s": 0.05, "result_tokens": 30},
         {"kind": "fork", "name": "review", "agents": 2, "turns": 2},
         {"kind": "spawn", "name": "fresh", "agents": 1, "turns": 1},
         {"kind": "turn"}]
PLAN = sessions_plan([{"concurrency": 2, "requests": 2}], sessions={**SESSIONS, "turns": 1, "agent": GRAPH})


async def test_every_node_sends_its_turns_and_forks_begin_with_their_parents_history():
    run = await run_sessions(PLAN)
    assert run.history.violations == []
    # per session: 4 turns of the parent after its first, and each forked sub-agent's 2 turns
    assert run.history.turns == 2 * (4 + 2 * 2)
    kinds = Counter((r.agent_node, r.agent_kind, bool(r.parent_session_id)) for r in run.requests)
    assert kinds == {("", "", False): 2, ("search", "tool", False): 2, ("review", "fork", True): 8,
                     ("review", "fork", False): 2, ("fresh", "spawn", True): 2, ("fresh", "spawn", False): 2,
                     ("3.turn", "turn", False): 2}
    assert all(r.error_class == "" for r in run.requests)


async def test_sub_agents_reuse_what_the_server_has_seen_as_the_client_expects():
    run = await run_sessions(PLAN)
    assert [r.expected_cached_tokens for r in run.requests] == [r.cached_tokens for r in run.requests]
    parents = {r.session_id: r for r in run.requests if r.agent_kind == "tool"}
    forked_first = [r for r in run.requests if r.parent_session_id and r.agent_kind == "fork"
                    and r.turn == parents[r.parent_session_id].turn + 1]
    assert len(forked_first) == 4
    # a forked sub-agent's first turn is served the parent's whole history (all but its unfinished block)
    assert all(r.expected_cached_tokens >= parents[r.parent_session_id].prompt_tokens // 16 * 16
               for r in forked_first)
    spawned = [r for r in run.requests if r.parent_session_id and r.agent_kind == "spawn"]
    assert all(r.turn == 0 for r in spawned)


async def test_a_tool_result_is_sent_once_the_tool_latency_has_passed():
    run = await run_sessions(PLAN)
    for tool in (r for r in run.requests if r.agent_kind == "tool"):
        before = next(r for r in run.requests if r.session_id == tool.session_id and r.turn == tool.turn - 1)
        assert tool.start_unix_ns - (before.start_unix_ns + before.e2e_ns) >= 0.05e9


def test_the_graph_is_part_of_the_plan_stored_with_the_run():
    stored = json.loads(PLAN.to_json())
    assert [node["kind"] for node in stored["sessions"]["agent"]] == ["tool", "fork", "spawn", "turn"]
    assert plan_from_mapping(stored, "stored plan") == PLAN
