"""`siliconbench-collector plan` as a user runs it: bad input is one line and exit code 2; a store with no
search answers with the searches to run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import make_store

WORKLOAD = ("--input-tokens", "512", "--output-tokens", "128")
SLO = ("--slo", "ttft_p99_ms<=800,itl_p99_ms<=60")


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
