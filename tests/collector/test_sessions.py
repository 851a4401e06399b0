"""Sessions in the store: a sessions plan run against the simulator (tests/agent/sessions/runs.py), stored
through the collector's ingest, read back per turn depth and per step, and shown in every report format."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from siliconbench.collector.ingest import tables_of
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection, Slo, select_series
from siliconbench.collector.sessions import Sessions, load_sessions
from siliconbench.core.wire import pb
from tests.agent.sessions.test_agents import PLAN
from tests.agent.sessions.runs import CACHING, SESSIONS, SessionRun, run_sessions, sessions_plan

TURNS = SESSIONS["turns"]


def store_run(store, run: SessionRun, run_id: str, plan_json: str) -> None:
    batch = pb.Batch(seq=1, batch_id=f"{run_id}/1")
    batch.runs.append(pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=run.requests[0].start_unix_ns,
                                  model="sim", simulated=True, config_json=plan_json))
    batch.requests.extend(run.requests)
    batch.steps.extend(run.sink.steps)
    batch.server_metrics.extend(run.sink.metrics)
    batch.runs.append(pb.RunEvent(run_id=run_id, phase=pb.PHASE_END, time_unix_ns=run.sink.steps[-1].end_unix_ns,
                                  outcome="complete", requests_sent=len(run.requests)))
    for table, columns in tables_of(batch, "n1").items():
        store.insert_arrow(table, columns, f"{table}/{batch.batch_id}")


@pytest.fixture(scope="module")
def stored(store):
    """A closed-loop step (2 sessions at once, 4 in all) then an open-loop one (3 sessions at 20/s)."""
    plan = sessions_plan([{"concurrency": 2, "requests": 4}, {"rate": 20, "requests": 3}])
    run = asyncio.run(run_sessions(plan, run_id="sessions-run"))
    store_run(store, run, "sessions-run", plan.to_json())
    return run


def sessions_of(store, slo: Slo = Slo()) -> Sessions:
    return load_sessions(store, select_series(store, Selection(runs=("sessions-run",))), slo)


def test_each_turn_depth_has_its_latency_and_the_reuse_expected_beside_the_servers(store, stored):
    turns = sessions_of(store).turns
    assert [(t.step, t.turn, t.requests) for t in turns] == \
        [(0, d, 4) for d in range(TURNS)] + [(1, d, 3) for d in range(TURNS)]
    for t in turns:
        mine = [r for r in stored.requests if (r.step, r.turn) == (t.step, t.turn)]
        assert t.expected_cached == sum(r.expected_cached_tokens for r in mine)
        assert t.cached == t.expected_cached and t.within_block == t.requests == t.reported
        assert t.block_size == CACHING.block_size
        assert t.prompt_tokens_total == sum(r.prompt_tokens for r in mine)
        assert t.ttft_ms.p50 > 0 and t.e2e_ms.p99 >= t.ttft_ms.p99
    # each turn resends the last: later turns are longer and reuse more
    first = [t for t in turns if t.step == 0]
    assert [t.prompt_tokens_mean for t in first] == sorted(t.prompt_tokens_mean for t in first)
    assert first[-1].expected_cached > first[1].expected_cached > 0


def test_sessions_per_step_count_their_turns_and_the_servers_own_prefix_cache_hits(store, stored):
    steps = sessions_of(store).steps
    assert [(s.step, s.sessions, s.turns, s.turns_mean) for s in steps] == [(0, 4, 4 * TURNS, TURNS),
                                                                           (1, 3, 3 * TURNS, TURNS)]
    for s in steps:
        assert s.server_hits == s.cached == s.expected_cached > 0  # /metrics counted what usage said, per step
        assert s.duration_ms.p50 > 0 and s.good_sessions == s.sessions and s.goodput_sps > 0


def test_a_session_is_good_only_when_every_turn_met_the_slo(store, stored):
    slowest_first_turn = max(r.ttft_ns for r in stored.requests if r.turn == 0) / 1e6
    fastest_later = min(r.ttft_ns for r in stored.requests if r.turn > 0) / 1e6
    assert sessions_of(store, Slo(ttft_ms=0.001)).steps[0].good_sessions == 0
    assert all(s.good_sessions == s.sessions
               for s in sessions_of(store, Slo(ttft_ms=max(slowest_first_turn, fastest_later) + 1e6)).steps)


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_every_report_format_shows_the_session_figures(store, stored, fmt):
    text = RENDERERS[fmt].report(build_report(store, Selection(runs=("sessions-run",)), Options(cost=False)))
    if fmt == "json":
        keys = {t["key"] for t in json.loads(text)["tables"]}
        assert {"session_turns", "sessions"} <= keys
    elif fmt == "csv":
        header = next(csv.reader(io.StringIO(text)))
        assert {"sessions", "session_goodput_sps", "turn0:ttft_p50_ms", "turn2:expected_cached_tokens"} <= set(header)
    else:
        assert "Sessions by turn depth" in text and "session goodput" in text


def test_an_agentic_sessions_sub_agents_are_part_of_it_and_its_nodes_have_their_own_rows(store):
    run = asyncio.run(run_sessions(PLAN, run_id="agentic-run"))
    store_run(store, run, "agentic-run", PLAN.to_json())
    found = load_sessions(store, select_series(store, Selection(runs=("agentic-run",))), Slo())
    [step] = found.steps
    assert (step.sessions, step.turns, step.turns_mean) == (2, 20, 10)  # 10 requests a session, sub-agents' too
    assert step.server_hits == step.cached == step.expected_cached > 0
    # depth 2: the 2 x 2 forked sub-agents' first turns and the 2 turns that join them
    assert {(t.agent_kind, t.requests) for t in found.turns if t.turn == 2} == {("fork", 6)}
    assert sum(t.requests for t in found.turns) == 20


def test_the_workload_of_a_sessions_run_is_its_conversations_not_one_prompt_length(store, stored):
    report = build_report(store, Selection(runs=("sessions-run",)), Options(cost=False))
    table = report.table("workload")
    [row] = [dict(zip((c.name for c in table.columns), r)) for r in table.rows]
    assert row["prompt tokens"] is None
    assert row["prompts"].startswith("sessions: 3 turns (40 then 20 tokens)")
    assert row["steps (one repetition)"] == "concurrency=2 ×4 sessions; poisson rate=20/s ×3 sessions"
