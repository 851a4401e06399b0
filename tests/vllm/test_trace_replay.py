"""Against a real vLLM with prefix caching on (its default): a Mooncake trace's hash ids, replayed as shared
blocks of exact token ids, are found in vLLM's prefix cache as the client expected, within one server block
per request; and a trace whose lengths exceed the server's max_model_len is refused before any request.

The tiny model serves a 2,048-token context: the fixture's request of line 10 (2,110 tokens) does not fit, so
the replay takes its first 1.1 s (lines 1-9), slowed down ten times so that each request's prefill is done
before the next that shares its blocks arrives (vLLM caches a block once computed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import start_collector
from tests.vllm.test_real_vllm import collector_sql

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

TRACE = Path(__file__).parents[1] / "fixtures" / "traces" / "mooncake.jsonl"


def agent(vllm_url: str, collector: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "siliconbench.agent", "run", "--target", vllm_url, "--collector", collector,
         "--trace", str(TRACE), "--trace-format", "mooncake", "--repetitions", "1", "--warmup-requests", "1",
         *options], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def replayed(vllm_url, tmp_path_factory) -> tuple[str, str, subprocess.CompletedProcess]:
    workdir = tmp_path_factory.mktemp("trace-replay")
    store = f"chdb://{workdir}/data"
    collector = start_collector(store, workdir / "collector.log")
    try:
        done = agent(vllm_url, collector.address, "--trace-window", "0:1.1", "--trace-time-scale", "10")
        assert done.returncode == 0, done.stderr[-3000:]
        refused = agent(vllm_url, collector.address)
    finally:
        collector.stop()
    return store, done.stdout.strip().splitlines()[-1], refused


def test_expected_reuse_equals_vllms_prefix_cache_hits_within_one_block_per_request(replayed):
    store, run_id, _ = replayed
    [[requests, expected, block]] = collector_sql(store, f"""
        SELECT count(), sum(r.expected_cached_tokens), any(s.block_size)
        FROM siliconbench.requests AS r JOIN siliconbench.steps AS s USING (run_id, step)
        WHERE run_id = '{run_id}' AND r.error_class = ''""")
    [[hits]] = collector_sql(store, f"""
        SELECT sum(end_value - start_value) FROM siliconbench.server_metrics
        WHERE run_id = '{run_id}' AND name = 'vllm:prefix_cache_hits_total'""")
    assert int(requests) == 9 and int(block) > 0  # vLLM states its block size (cache_config_info)
    assert int(expected) == 2560  # lines 3, 6 and 8 resend one, two and two 512-token blocks
    assert abs(float(hits) - int(expected)) <= int(requests) * int(block), (hits, expected)
    print(f"expected reuse {int(expected)} tokens, vLLM prefix-cache hits {float(hits):.0f} (block {block})")


def test_a_trace_longer_than_the_servers_context_is_refused_before_the_run(replayed):
    *_, refused = replayed
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "1 of 12 requests need more than the server's max_model_len of 2048" in refused.stderr
