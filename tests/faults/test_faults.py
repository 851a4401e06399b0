"""Fault tests with real processes over loopback: a scripted agent (the real Shipper and Spool)
streams request records to a real collector on its own chDB path; a fault strikes mid-run.
After each: rows stored == rows produced, no duplicates, and a log line that says what happened.

Each test takes a few seconds (process start-up dominates)."""

from __future__ import annotations

import random
import re
import uuid
from pathlib import Path

import pytest

from tests.faults.procs import (
    CuttableProxy,
    reported_requests,
    sql,
    start_agent,
    forget_kept,
    start_flaky_collector,
    step_answers,
    step_results,
    stored,
    wait_kept,
    wait_sealed,
)
from tests.servers import HeldPort, start_collector


@pytest.fixture
def run_id() -> str:
    return f"fault-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store(tmp_path) -> str:
    return f"chdb://{tmp_path / 'store'}"


def matrix_line(fault: str, produced: int, rows: int, distinct: int) -> None:
    print(f"\nFAULT-MATRIX | {fault} | produced {produced} | stored {rows} | duplicates {rows - distinct}")


def test_collector_killed_mid_run_and_restarted(tmp_path: Path, store: str, run_id: str):
    collector = start_collector(store, tmp_path / "collector.log")
    port = collector.port
    with HeldPort(port):  # while the collector is down, nothing else can take its port
        agent = start_agent(port, tmp_path / "spool", run_id, tmp_path / "agent.log", count=300)
        agent.wait_line("sealed 100")
        collector.kill9()
        agent.wait_line("sealed 150")  # production goes on into the spool
        collector = start_collector(store, tmp_path / "collector.log", port=port)
        assert agent.wait() == 0, agent.log()[-3000:]
        assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("collector kill -9 + restart", 300, rows, distinct)
    assert rows == distinct == 300
    assert "unreachable or not storing" in agent.log() and "replaying" in agent.log()


def test_reports_count_every_row_after_many_collector_kills_at_random_points(tmp_path: Path, store: str, run_id: str):
    """Several agents stream while the collector is killed -9 five times at random points of their
    production and restarted. Batches of 250 requests make the insert long enough that kills land
    between a row and its digest (seen in the log: "rebuilt the request digests of 2 step(s)").
    Each agent's step is over once the run ends; the kills also land while a step is being kept (the
    first agent's end makes every step of the run due, and each later batch makes its step due again), so
    every step must then be kept by the last collector, and its kept results equal the computation from
    its rows (collector/kept.py)."""
    agents, per_agent, chunk = 4, 3000, 250
    collector = start_collector(store, tmp_path / "collector.log")
    port = collector.port
    with HeldPort(port):  # while the collector is down, nothing else can take its port
        procs = [start_agent(port, tmp_path / f"spool-{a}", run_id, tmp_path / f"agent-{a}.log", start=a * per_agent,
                             count=per_agent, chunk=chunk, pause_s=0.02, grace_s=300, agent=f"crash-agent-{a}")
                 for a in range(agents)]
        kills = 0
        for at in sorted(random.sample(range(chunk, per_agent, chunk), 5)):
            if not wait_sealed(procs[kills % agents], at):
                break  # that agent finished first: the kills so far must do
            collector.kill9()
            kills += 1
            collector = start_collector(store, tmp_path / "collector.log", port=port)
        assert [p.wait(600) for p in procs] == [0] * agents, [p.log()[-2000:] for p in procs]
        wait_kept(store, run_id, steps=agents)  # by the serving collector's keeper, read through it
        assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    [[digested]] = sql(store, f"SELECT sum(requests) FROM siliconbench.request_digests FINAL WHERE run_id = '{run_id}'")
    matrix_line(f"collector kill -9 x{kills} + restarts, {agents} agents", agents * per_agent, rows, distinct)
    assert kills >= 1
    assert reported_requests(store, run_id) == int(digested) == rows == distinct == agents * per_agent

    kept, kept_answers = step_results(store, run_id), step_answers(store, run_id)
    [[answer_rows]] = sql(store, f"SELECT count() FROM siliconbench.kept_answers FINAL WHERE run_id = '{run_id}'")
    assert [r["kept"] for r in kept] == ["True"] * agents and int(answer_rows) == agents  # one model per step
    forget_kept(store)
    computed = step_results(store, run_id)
    assert [r["kept"] for r in computed] == ["False"] * agents
    assert [{**r, "kept": "-"} for r in kept] == [{**r, "kept": "-"} for r in computed]
    assert kept_answers == step_answers(store, run_id)


def test_store_unavailable_for_a_while(tmp_path: Path, store: str, run_id: str):
    down = tmp_path / "store-down"
    collector = start_flaky_collector(store, tmp_path / "collector.log", down)
    agent = start_agent(collector.port, tmp_path / "spool", run_id, tmp_path / "agent.log", count=300)
    agent.wait_line("sealed 80")
    down.touch()
    agent.wait_line("sealed 200")
    down.unlink()
    assert agent.wait() == 0, agent.log()[-3000:]
    assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("store unavailable ~1 s", 300, rows, distinct)
    assert rows == distinct == 300
    assert "not stored (StoreUnavailable: ClickHouse at" in collector.log()
    assert "the agent keeps it and resends it" in collector.log()


def test_agent_killed_mid_run_and_restarted_replays_its_spool(tmp_path: Path, store: str, run_id: str):
    spool = tmp_path / "spool"
    with HeldPort() as held:  # the collector's port, before the collector is up
        agent = start_agent(held.port, spool, run_id, tmp_path / "agent.log", count=1000, pause_s=0.2)
        agent.wait_line("sealed 100")
        agent.kill9()  # records 0..99 are in the spool; nothing else was produced
        collector = start_collector(store, tmp_path / "collector.log", port=held.port)
        agent = start_agent(held.port, spool, run_id, tmp_path / "agent.log", start=100, count=100)
        assert agent.wait() == 0, agent.log()[-3000:]
        assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("agent kill -9 + restart (spool survives)", 200, rows, distinct)
    assert rows == distinct == 200
    assert "from a previous run will be replayed" in agent.log()


def test_corrupt_spool_file_is_quarantined_and_the_rest_delivered(tmp_path: Path, store: str, run_id: str):
    spool = tmp_path / "spool"
    with HeldPort() as held:
        agent = start_agent(held.port, spool, run_id, tmp_path / "agent.log", count=1000, pause_s=0.2)
        agent.wait_line("sealed 50")
        agent.kill9()
        victim = sorted(spool.glob("*.batch"))[2]  # records 20..29
        victim.write_bytes(victim.read_bytes()[:-7])
        collector = start_collector(store, tmp_path / "collector.log", port=held.port)
        agent = start_agent(held.port, spool, run_id, tmp_path / "agent.log", start=50, count=50)
        assert agent.wait() == 0, agent.log()[-3000:]
        assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("truncated spool file (10 records quarantined)", 100, rows, distinct)
    assert rows == distinct == 100 - 10
    assert (spool / "quarantine" / victim.name).exists()
    assert f"{victim.name} is corrupt or truncated" in agent.log()


def test_wrong_token_is_refused_and_the_spool_keeps_everything_for_the_right_one(tmp_path: Path, store: str, run_id: str):
    spool, tokens = tmp_path / "spool", tmp_path / "tokens"
    tokens.write_text("the-right-token\n")
    collector = start_collector(store, tmp_path / "collector.log", "--agent-tokens-file", str(tokens))
    port = collector.port
    agent = start_agent(port, spool, run_id, tmp_path / "agent.log", count=100, token="a-wrong-token", grace_s=1)
    assert agent.wait() == 3  # not delivered: kept in the spool
    agent = start_agent(port, spool, run_id, tmp_path / "agent.log", start=100, count=100, token="the-right-token")
    assert agent.wait() == 0, agent.log()[-3000:]
    assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("wrong token, then the right one", 200, rows, distinct)
    assert rows == distinct == 200
    assert "refused: missing or wrong bearer token" in collector.log()
    assert "refused this agent's token" in agent.log()
    assert "a-wrong-token" not in collector.log() and "the-right-token" not in collector.log()


def test_network_cut_refuses_connections_for_a_while(tmp_path: Path, store: str, run_id: str):
    collector = start_collector(store, tmp_path / "collector.log")
    proxy = CuttableProxy(collector.port)
    try:
        agent = start_agent(proxy.port, tmp_path / "spool", run_id, tmp_path / "agent.log", count=300)
        agent.wait_line("sealed 80")
        proxy.cut()
        agent.wait_line("sealed 200")
        agent.wait_log(re.compile("unreachable or not storing"))  # the agent has met the cut: restore it
        proxy.restore()
        assert agent.wait() == 0, agent.log()[-3000:]
    finally:
        proxy.close()
    assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("network cut (connection refused ~1.5 s)", 300, rows, distinct)
    assert rows == distinct == 300


def test_sigterm_drains_everything_produced_within_the_grace_period(tmp_path: Path, store: str, run_id: str):
    collector = start_collector(store, tmp_path / "collector.log")
    agent = start_agent(collector.port, tmp_path / "spool", run_id, tmp_path / "agent.log", count=10_000, grace_s=20)
    agent.wait_line("sealed 100")
    agent.popen.terminate()
    produced = int(agent.wait_line("produced").split()[1])
    assert agent.wait() == 0, agent.log()[-3000:]
    assert collector.stop() == 0
    rows, distinct = stored(store, run_id)
    matrix_line("agent SIGTERM mid-run (graceful drain)", produced, rows, distinct)
    assert rows == distinct == produced
    assert not list((tmp_path / "spool").glob("*.batch"))
