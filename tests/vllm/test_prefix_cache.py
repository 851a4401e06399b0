"""Against a real vLLM: two identical chat runs measure the server, not its prefix cache. Each run's
prompts open with a line drawn from its run id, so the second run finds nothing of the first in vLLM's
prefix cache (its TTFT differs from the first's only by noise); with --shared-prompts the second run
sends the first's prompts and is served from the cache. The hit rate is the test's measure: TTFT on a
shared 2-core machine swings by a third from run to run, as much as the cache takes off it here. The report shows the hit rate and the server's figures beside the
client's; the agent's console states each step's tok/s as the report does.

Long prompts (1,024 tokens: the prefill dominates TTFT), one stream, a few requests: short enough for
the vLLM pass of CI on 2 cores."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.servers import start_collector
from tests.vllm.test_real_vllm import collector_sql

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

INPUT_TOKENS = 1024
REQUESTS = 4
UNEXPECTED_HITS = 0.05   # the chat template's fixed opening is shared by every prompt: a few tokens of 1,024
SHARED_HITS = 0.80       # vLLM caches whole blocks and recomputes the last: 7 of 8 blocks of 128 tokens (CPU build)


@dataclass(frozen=True)
class Run:
    run_id: str
    console: str


@dataclass(frozen=True)
class Figures:
    hit_rate: float
    ttft_mean_ms: float
    server_ttft_mean_ms: float


def agent_run(vllm_url: str, collector: str, cache_dir: str, *options: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "siliconbench.agent", "run", "--target", vllm_url, "--collector", collector,
         "--endpoint", "chat", "--concurrency", "1", "--requests-per-step", str(REQUESTS), "--input-tokens",
         str(INPUT_TOKENS), "--output-tokens", "8", "--repetitions", "1", "--warmup-requests", "1", *options],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SILICONBENCH_CACHE_DIR": cache_dir})
    assert done.returncode == 0, done.stderr[-3000:]
    return Run(done.stdout.strip().splitlines()[-1], done.stderr)


@pytest.fixture(scope="module")
def runs(vllm_url, tmp_path_factory) -> tuple[str, dict[str, Run]]:
    """Two identical runs with unique prompts, then two with shared prompts, into one store; a run before
    them warms the server (a fresh vLLM answers its first requests up to twice as slowly)."""
    workdir = tmp_path_factory.mktemp("prefix-cache")
    store = f"chdb://{workdir}/data"
    collector = start_collector(store, workdir / "collector.log")
    try:
        made = {}
        for name, options in (("warm-up", ()), ("first", ()), ("second", ()),
                              ("shared first", ("--shared-prompts", "--seed", "7")),
                              ("shared second", ("--shared-prompts", "--seed", "7"))):
            made[name] = agent_run(vllm_url, collector.address, str(workdir / "prompt-cache"), *options)
    finally:
        collector.stop()
    return store, made


def figures(store: str, run: Run) -> Figures:
    [[hit, ttft, server]] = collector_sql(store, f"""
        SELECT prefix_cache_hit_rate, ttft_mean_ms, server_ttft_mean_ms
        FROM siliconbench.step_results(ttft_ms = inf, ttfa_ms = inf, itl_ms = inf, tpot_ms = inf, e2e_ms = inf) WHERE run_id = '{run.run_id}'""")
    return Figures(float(hit), float(ttft), float(server))


def test_a_second_identical_run_finds_nothing_in_the_prefix_cache(runs):
    store, made = runs
    first, second = figures(store, made["first"]), figures(store, made["second"])
    print(f"\nunique prompts: {first} then {second}")
    assert first.hit_rate <= UNEXPECTED_HITS and second.hit_rate <= UNEXPECTED_HITS


def test_shared_prompts_are_served_from_the_cache_on_the_second_run(runs):
    store, made = runs
    first, second = figures(store, made["shared first"]), figures(store, made["shared second"])
    print(f"\nshared prompts: {first} then {second}")
    assert first.hit_rate <= UNEXPECTED_HITS < SHARED_HITS <= second.hit_rate


def test_the_report_shows_the_hit_rate_and_the_servers_figures_beside_the_clients(runs):
    store, made = runs
    done = subprocess.run([sys.executable, "-m", "siliconbench.collector", "report", "--run", made["second"].run_id,
                           "--store", store, "--format", "json", "--no-cost"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    table = next(t for t in json.loads(done.stdout)["tables"] if t["key"] == "server")
    [row] = [dict(zip(table["columns"], r)) for r in table["rows"]]
    assert row["prefix-cache hit rate"] <= UNEXPECTED_HITS * 100
    assert row["client output tokens"] == row["server output tokens"] == REQUESTS * 8
    assert row["client TTFT mean"] >= row["server TTFT mean"] > 0
    assert row["client vs server tokens"].startswith("passed")


def test_the_console_states_each_steps_tok_s_as_the_report_does(runs):
    store, made = runs
    for run in made.values():
        [shown] = re.findall(r"requests  ([\d,]+) output tok/s over", run.console)
        [[stored]] = collector_sql(store, f"SELECT output_tps FROM siliconbench.step_rollups WHERE run_id = '{run.run_id}'")
        assert abs(float(shown.replace(",", "")) - float(stored)) <= 0.5, (shown, stored)
