"""`siliconbench-collector plan` as a user runs it: bad input is one line and exit code 2; a store with no
search answers with the searches to run."""

from __future__ import annotations

import json
import subprocess
import sys

import uuid

import pytest

from siliconbench.collector.cli import app
from siliconbench.collector.schema import RUNS
from tests.collector import rows
from tests.collector.plan.stored import SLO as SEARCHED, price_file, store_search
from tests.programs import run_program
from tests.servers import make_store

WORKLOAD = ("--input-tokens", "512", "--output-tokens", "128")
SLO = ("--slo", "ttft_p99_ms<=800,itl_p99_ms<=60")
SLO_SEARCHED = ("--slo", SEARCHED)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", "plan", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> str:
    return make_store(f"chdb://{tmp_path_factory.mktemp('plan-cli')}/data")


@pytest.mark.parametrize("args, message", [
    ((*SLO, *WORKLOAD), "give the target load: --load"),
    ((*SLO, *WORKLOAD, "--load", "40 furlongs"), "--load '40 furlongs': write a number and a unit"),
    ((*SLO, *WORKLOAD, "--load", "40 req/s", "--load-from-run", "r"), "give the target load"),
    (("--slo", "ttft=5", *WORKLOAD, "--load", "40 req/s"), "--slo: 'ttft=5'"),
    ((*SLO, "--load", "40 req/s"), "give the workload: --input-tokens N --output-tokens M"),
    ((*SLO, "--load", "40 req/s", "--workload-of", "nope"), "--workload-of: no run 'nope' in the store"),
    ((*SLO, *WORKLOAD, "--load-from-run", "nope"), "--load-from-run: no requests of run 'nope'"),
    ((*SLO, *WORKLOAD, "--load", "40 req/s", "--format", "pdf"), "--format 'pdf' is not one of markdown, csv, json, html"),
    ((*SLO, *WORKLOAD, "--load", "40 req/s", "--headroom", "-1"), "--headroom -1: give a share >= 0"),
    ((*SLO, *WORKLOAD, "--load", "40 req/s", "--prices", "/nonexistent.csv"), "cannot read price file /nonexistent.csv"),
])
def test_bad_input_is_one_clear_line_and_exit_code_2(empty_store, args, message):
    result = cli(*args, "--store", empty_store)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_a_store_without_searches_lists_each_candidate_as_missing_with_its_command(empty_store):
    result = cli(*SLO, *WORKLOAD, "--load", "40 req/s", "--candidates", "p5.48xlarge,inf2.48xlarge", "--format",
                 "json", "--store", empty_store)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["choices"] == []
    assert [m["instance_type"] for m in document["missing"]] == ["inf2.48xlarge", "p5.48xlarge"]
    assert "--instance-type p5.48xlarge" in document["missing"][1]["command"]
    assert document["recommendation"].startswith("no stored search answers for this plan")


def test_a_stored_run_gives_the_load_its_peak_minute_and_the_workload_its_requests(store, tmp_path):
    tag = uuid.uuid4().hex[:8]
    run, instance_type = f"traffic-{tag}", f"one-{tag}"
    plan_json = '{"input_tokens": 512, "output_tokens": 128}'
    store.insert("runs", [RUNS.row(**{**dict(zip(RUNS.names, rows.run(run, "a"))), "config_json": plan_json})], run)
    # 150 arrivals in the busiest minute: 2.5 req/s
    store.insert("requests", [rows.request(run, "a", i, start_s=i * 0.4) for i in range(150)]
                 + [rows.request(run, "a", 150 + i, start_s=60 + i) for i in range(60)], f"{run}/q")
    store_search(store, instance_type, boundary=1.0)
    code, lines = run_program(app, "plan", "--load-from-run", run, *SLO_SEARCHED, "--candidates", instance_type,
                              "--prices", str(price_file(tmp_path / "p.csv", {instance_type: 2.0})),
                              "--format", "json", "--store", store.location.shown)
    assert code == 0, lines
    document = json.loads("\n".join(lines))
    assert document["load"] == {"value": 2.5, "unit": "req/s", "output_tps": 320.0,
                                "source": f"run {run}: peak minute 2026-03-01 12:00 UTC, 150 arrivals"}
    assert document["workload"] == ("endpoint completions, prompt tokens 512, output tokens 128, prompts synthetic "
                                    f"token ids, unique per run (the requests of run {run})")
    [choice] = document["choices"]
    assert (choice["nodes"], choice["usd_per_hour"]) == (3, 6.0)  # ceil(2.5 x 1.2 / 1.0) x $2
