"""Sessions against a real vLLM with prefix caching on and cached tokens in its usage
(--enable-prompt-tokens-details): each turn's expected reuse, from the token ids the client sent and
received at the server's block size, is vLLM's own count within one block, turn by turn, and per step the
server's /metrics prefix-cache hits are what its usage said. Stored through a real collector.

One session at a time (sessions sharing a system prompt start while another's prefill runs otherwise, and
which of them computes the shared blocks first is the scheduler's choice): 3 sessions of 4 turns, the two
system prompts long enough for whole blocks of the CPU build's 128 tokens."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.servers import start_collector
from tests.vllm.conftest import build_model, running_vllm, vllm_python
from tests.vllm.test_real_vllm import collector_sql

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

SESSIONS, TURNS = 3, 4


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    py = vllm_python()
    model_dir = tmp_path_factory.mktemp("tiny-model-sessions")
    build_model(py, model_dir)
    workdir = tmp_path_factory.mktemp("sessions")
    store = f"chdb://{workdir}/data"
    with running_vllm(py, model_dir, "--enable-prefix-caching", "--enable-prompt-tokens-details") as url:
        collector = start_collector(store, workdir / "collector.log")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "siliconbench.agent", "run", "--target", url, "--collector", collector.address,
                 "--endpoint", "chat", "--concurrency", "1", "--requests-per-step", str(SESSIONS), "--output-tokens",
                 "24", "--repetitions", "1", "--warmup-requests", "1", "--sessions-turns", str(TURNS),
                 "--sessions-first-turn-tokens", "150", "--sessions-followup-tokens", "60",
                 "--sessions-system-prompts", "300:1,200:1", "--sessions-think-time-s", "0.05"],
                capture_output=True, text=True, timeout=600)
        finally:
            collector.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    return store, done.stdout.strip().splitlines()[-1]


def test_every_turns_expected_reuse_is_vllms_own_within_one_block(stored):
    store, run_id = stored
    rows = collector_sql(store, f"""
        SELECT r.session_id, r.turn, r.prompt_tokens, r.expected_cached_tokens, r.cached_tokens, s.block_size
        FROM siliconbench.requests AS r JOIN siliconbench.steps AS s USING (run_id, agent_id, step)
        WHERE run_id = '{run_id}' AND r.error_class = '' ORDER BY r.start_time""")
    print("\nsession turn prompt expected vLLM block")
    for row in rows:
        print(" ".join(row))
    assert len(rows) == SESSIONS * TURNS
    block = int(rows[0][5])
    assert block > 0  # read from vllm:cache_config_info
    exact = sum(int(expected) == int(cached) for _, _, _, expected, cached, _ in rows)
    print(f"{exact} of {len(rows)} turns exact at block size {block}")
    assert all(abs(int(expected) - int(cached)) <= block for _, _, _, expected, cached, _ in rows)
    assert sum(int(cached) for *_, cached, _ in rows) > 0


def test_the_servers_metrics_counted_the_cached_tokens_its_usage_reported(stored):
    store, run_id = stored
    [[cached, expected, hits]] = collector_sql(store, f"""
        SELECT cached, expected_cached, server_hits
        FROM siliconbench.step_sessions(ttft_ms = inf, ttfa_ms = inf, tpot_ms = inf, e2e_ms = inf)
        WHERE run_id = '{run_id}'""")
    print(f"\nstep: expected {expected}, usage cached {cached}, /metrics prefix-cache hits {hits}")
    assert float(hits) == int(cached) > 0
