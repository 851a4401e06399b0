"""Against a real vLLM sharing the agent's cores: a step is called client-limited only where the evidence
shows the client delayed the load (its dispatch delay, or a sending process at a full core); a late event
loop while the client sent on time is a busy node, named with vLLM's own CPU. And what vLLM would refuse
(a prompt and output longer than its max_model_len, which /v1/models states) is refused before any request.

The per-step evidence is printed (pytest -s) for the record: node CPU, vLLM's CPU, the agent's, the client's
dispatch delay."""

from __future__ import annotations

import subprocess
import sys

import pytest

from siliconbench.core.verdict import CLIENT_DELAY_MS, CLIENT_DELAY_SHARE, SENDER_CPU_PCT
from tests.servers import start_collector
from tests.vllm.test_real_vllm import collector_sql

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

EVIDENCE = ("step", "concurrency", "verdict", "client_delay_p99_ms", "client_delay_share", "agent_cpu_pct",
            "agent_processes_cpu_pct", "node_cpu_pct", "server_cpu_pct", "loop_lag_p99_ms")


def agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.agent", "run", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def steps(vllm_url, tmp_path_factory) -> list[dict]:
    workdir = tmp_path_factory.mktemp("vllm-verdicts")
    store = f"chdb://{workdir}/data"
    collector = start_collector(store, workdir / "collector.log")
    try:
        run = agent("--target", vllm_url, "--collector", collector.address, "--concurrency", "1,4,16",
                    "--requests-per-step", "32", "--input-tokens", "64", "--output-tokens", "32", "--repetitions", "1",
                    "--warmup-requests", "2", "--workers", "1")
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        collector.stop()
    run_id = run.stdout.strip().splitlines()[-1]
    rows = collector_sql(store, f"SELECT {', '.join(EVIDENCE)} FROM siliconbench.steps WHERE run_id = '{run_id}' "
                                "ORDER BY step")
    out = [dict(zip(EVIDENCE, row)) for row in rows]
    for row in out:
        print("step evidence:", row)
    return out


def test_no_step_is_client_limited_unless_dispatch_delay_or_the_agent_s_cpu_shows_it(steps):
    assert len(steps) == 3
    for row in steps:  # every step has sends that followed a freed slot (32 requests, at most 16 slots)
        delayed = (float(row["client_delay_p99_ms"]) >= CLIENT_DELAY_MS
                   and float(row["client_delay_share"]) >= CLIENT_DELAY_SHARE)
        busy_sender = float(row["agent_cpu_pct"]) >= SENDER_CPU_PCT
        assert (row["verdict"] == "client-limited") == (delayed or busy_sender), row
        assert row["verdict"] in ("ok", "node busy", "client-limited"), row


def test_vllm_s_own_processes_are_measured_beside_the_node_and_the_agent(steps):
    for row in steps:
        assert 0 < float(row["node_cpu_pct"]) <= 100, row
        assert float(row["server_cpu_pct"]) > 0, row  # vLLM runs on this node, found by its port
        assert float(row["agent_processes_cpu_pct"]) > 0, row


def test_a_prompt_and_output_past_max_model_len_are_refused_before_any_request(vllm_url, tmp_path):
    run = agent("--target", vllm_url, "--collector", "127.0.0.1:1", "--concurrency", "1", "--requests-per-step", "1",
                "--input-tokens", "2040", "--output-tokens", "16", "--repetitions", "1", "--spool-dir", str(tmp_path))
    assert run.returncode == 2, run.stderr[-3000:]
    assert "2040 input + 16 output tokens = 2056 is more than tiny-llama's max_model_len 2048" in run.stderr
    assert "Traceback" not in run.stderr
