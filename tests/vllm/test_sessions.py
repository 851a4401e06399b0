"""Sessions against a real vLLM with prefix caching on and cached tokens in its usage
(--enable-prompt-tokens-details): each turn's expected reuse, from the token ids the client sent and
received at the server's block size, is vLLM's own count within one block, turn by turn, and per step the
server's /metrics prefix-cache hits are what its usage said. Stored through a real collector.

One session at a time (sessions sharing a system prompt start while another's prefill runs otherwise, and
which of them computes the shared blocks first is the scheduler's choice): 3 sessions of 4 turns, the two
system prompts long enough for whole blocks of the CPU build's 128 tokens; then 2 agentic sessions (a tool
turn, two forked sub-agents at once, a spawned one, a last turn) on the same server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.servers import start_collector
from tests.vllm.conftest import build_model, running_vllm, vllm_python
from tests.vllm.test_real_vllm import collector_sql

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

SESSIONS, TURNS = 3, 4


AGENT_PLAN = """
endpoint: chat
concurrency: [1]
requests_per_step: 2
output_tokens: 24
repetitions: 1
warmup_requests: 1
sessions:
  turns: 1
  first_turn_tokens: 150
  followup_tokens: 60
  system_prompts: [{tokens: 300}]
  agent:
    - {kind: tool, latency_s: 0.1, result_tokens: 60}
    - {kind: fork, agents: 2, turns: 1}
    - {kind: spawn, agents: 1, turns: 1}
    - {kind: turn}
"""
AGENT_TURNS = 2 * 8  # per session: its first turn, 4 node turns, 2 forked and 1 spawned sub-agent turns


def agent_run(url: str, collector: str, *options: str) -> str:
    done = subprocess.run([sys.executable, "-m", "siliconbench.agent", "run", "--target", url, "--collector",
                           collector, *options], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A multi-turn run, then an agentic one, against one vLLM: (store, multi-turn run id, agentic run id)."""
    py = vllm_python()
    model_dir = tmp_path_factory.mktemp("tiny-model-sessions")
    build_model(py, model_dir)
    workdir = tmp_path_factory.mktemp("sessions")
    store = f"chdb://{workdir}/data"
    plan = workdir / "agent.yaml"
    plan.write_text(AGENT_PLAN)
    with running_vllm(py, model_dir, "--enable-prefix-caching", "--enable-prompt-tokens-details") as url:
        collector = start_collector(store, workdir / "collector.log")
        try:
            sessions = agent_run(
                url, collector.address, "--endpoint", "chat", "--concurrency", "1", "--requests-per-step",
                str(SESSIONS), "--output-tokens", "24", "--repetitions", "1", "--warmup-requests", "1",
                "--sessions-turns", str(TURNS), "--sessions-first-turn-tokens", "150", "--sessions-followup-tokens",
                "60", "--sessions-system-prompts", "300:1,200:1", "--sessions-think-time-s", "0.05")
            agentic = agent_run(url, collector.address, "--plan", str(plan))
        finally:
            collector.stop()
    return store, sessions, agentic


def turns_of(store: str, run_id: str) -> list[list[str]]:
    rows = collector_sql(store, f"""
        SELECT r.session_id, r.turn, r.agent_kind, r.prompt_tokens, r.expected_cached_tokens, r.cached_tokens,
               s.block_size
        FROM siliconbench.requests AS r JOIN siliconbench.steps AS s USING (run_id, agent_id, step)
        WHERE run_id = '{run_id}' AND r.error_class = '' ORDER BY r.start_time""")
    print("\nsession turn agent prompt expected vLLM block")
    for row in rows:
        print(" ".join(row))
    block = int(rows[0][6])
    exact = sum(int(row[4]) == int(row[5]) for row in rows)
    print(f"{exact} of {len(rows)} turns exact at block size {block}")
    return rows


def within_one_block(rows: list[list[str]]) -> bool:
    return all(abs(int(expected) - int(cached)) <= int(block) for *_, expected, cached, block in rows)


def test_every_turns_expected_reuse_is_vllms_own_within_one_block(stored):
    store, run_id, _ = stored
    rows = turns_of(store, run_id)
    assert len(rows) == SESSIONS * TURNS
    assert int(rows[0][6]) > 0  # the block size, read from vllm:cache_config_info
    assert within_one_block(rows)
    assert sum(int(row[5]) for row in rows) > 0


def test_an_agentic_sessions_turns_and_sub_agents_reuse_as_expected_within_one_block(stored):
    store, _, run_id = stored
    rows = turns_of(store, run_id)
    assert len(rows) == AGENT_TURNS
    assert {row[2] for row in rows} == {"", "tool", "fork", "spawn", "turn"}
    assert within_one_block(rows)


@pytest.mark.parametrize("run", [1, 2], ids=["multi-turn", "agentic"])
def test_the_servers_metrics_counted_the_cached_tokens_its_usage_reported(stored, run):
    store, run_id = stored[0], stored[run]
    [[cached, expected, hits]] = collector_sql(store, f"""
        SELECT cached, expected_cached, server_hits
        FROM siliconbench.step_sessions(ttft_ms = inf, ttfa_ms = inf, itl_ms = inf, tpot_ms = inf, e2e_ms = inf)
        WHERE run_id = '{run_id}'""")
    print(f"\nstep: expected {expected}, usage cached {cached}, /metrics prefix-cache hits {hits}")
    assert float(hits) == int(cached) > 0
