"""A fleet run as on EKS, on loopback: one collector, three agent daemons each beside its own
simulator (profiles standing in for three instance types), one `run start`, one report."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from siliconbench.core.errors import ExitCode
from tests.servers import Proc, start_collector, start_node

NODES = [  # node, scenario, instance type, simulator TTFT ms, ITL ms (TTFTs at least 28 ms apart)
    ("node-a", "A", "p5.48xlarge", 12.0, 4.0),
    ("node-b", "B", "p4d.24xlarge", 40.0, 9.0),
    ("node-c", "C", "g6e.48xlarge", 80.0, 11.0),
]
PLAN = """\
concurrency: [1, 2]
requests_per_step: 6
input_tokens: 32
output_tokens: 12
warmup_requests: 1
repetitions: 1
"""


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Everything running; yields (collector address, store, processes); stops all at the end."""
    tmp = tmp_path_factory.mktemp("fleet")
    store = f"chdb://{tmp}/data"
    collector = start_collector(store, tmp / "collector.log")
    processes: list[Proc] = []
    try:
        for node, scenario, itype, ttft, itl in NODES:
            processes += start_node(collector.address, tmp, node, scenario, itype, "--ttft-ms", str(ttft), "--itl-ms", str(itl))
        (tmp / "plan.yaml").write_text(PLAN)
        yield collector.address, store, tmp / "plan.yaml", collector, processes
    finally:
        for process in processes:
            process.stop()
        collector.stop()


@pytest.fixture(scope="module")
def finished_run(fleet):
    address, _store, plan, _collector, _processes = fleet
    started = cli("run", "start", "--plan", str(plan), "--collector", address, "--min-agents", "3", "--wait-s", "60",
                  "--start-delay-s", "1")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    watched = cli("run", "status", "--run", run_id, "--watch", "--interval-s", "0.5", "--collector", address)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    return run_id, watched.stdout


def test_every_node_finishes_all_steps(finished_run):
    run_id, transcript = finished_run
    assert f"run {run_id}: finished" in transcript
    for node, scenario, itype, *_ in NODES:
        line = next(row for row in transcript.splitlines() if row.startswith(node) and "finished" in row)
        assert scenario in line and itype in line and " 2/2 " in line


def test_selector_that_matches_no_agent_is_a_clear_error(fleet):
    address, _, plan, *_ = fleet
    result = cli("run", "start", "--plan", str(plan), "--collector", address, "--selector", "instance-type=trn2.48xlarge")
    assert result.returncode == 2
    assert "0 connected agents match {'instance-type': 'trn2.48xlarge'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_selector_key_is_refused(fleet):
    address, _, plan, *_ = fleet
    result = cli("run", "start", "--plan", str(plan), "--collector", address, "--selector", "colour=blue")
    assert result.returncode == 2 and "unknown selector keys" in result.stderr




def test_cancel_stops_a_running_fleet_run_on_every_node_and_reports_a_late_joiner(fleet, finished_run, tmp_path):
    address, *_ = fleet
    long_plan = tmp_path / "long.yaml"
    long_plan.write_text(PLAN.replace("requests_per_step: 6", "requests_per_step: 500"))
    started = cli("run", "start", "--plan", str(long_plan), "--collector", address, "--min-agents", "3",
                  "--start-delay-s", "0.5")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    deadline = time.monotonic() + 30
    while "running" not in cli("run", "status", "--run", run_id, "--collector", address).stdout.split("\n")[0]:
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.3)
    late = start_node(address, tmp_path, "node-late", "A", "p5.48xlarge", "--ttft-ms", "5", "--itl-ms", "2")  # joins while the run goes on
    try:
        deadline = time.monotonic() + 30
        while "joined after the start" not in cli("run", "status", "--run", run_id, "--collector", address).stdout:
            assert time.monotonic() < deadline, "the late joiner was never reported"
            time.sleep(0.3)
    finally:
        for process in late:
            process.stop()
    cancelled = cli("run", "cancel", "--run", run_id, "--collector", address)
    assert cancelled.returncode == 0 and "cancel sent to 3 agents" in cancelled.stdout
    watched = cli("run", "status", "--run", run_id, "--watch", "--interval-s", "0.3", "--collector", address)
    assert watched.returncode == ExitCode.RUN_UNFINISHED == 3  # ended, but not finished
    assert f"run {run_id}: cancelled" in watched.stdout
    assert watched.stdout.count("cancelled by the collector") == 3


def test_report_compares_the_scenarios_with_pooled_exact_percentiles(fleet, finished_run):
    """Last: it stops the fleet, since the embedded store serves one process at a time."""
    _address, store, _plan, collector, processes = fleet
    run_id, _ = finished_run
    for process in processes:
        process.stop()
    assert collector.stop() == 0
    report = cli("run", "report", "--run", run_id, "--store", store)
    assert report.returncode == 0, report.stderr
    text = report.stdout
    assert "UNFINISHED" not in text and "SIMULATED target" in text
    rows = [line for line in text.splitlines() if line.startswith(("| A ", "| B ", "| C "))
            and "| concurrency " in line]  # the scenario table's (the cost table's rows follow it)
    assert len(rows) == 2 * len(NODES)  # one row per scenario and concurrency
    ttft_p50 = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        scenario, itype, conc, nodes, requests, errors = cells[:6]
        assert nodes == "1" and requests == "6" and errors == "0"
        ttft_p50[(scenario, conc)] = float(cells[6].split("/")[0])
        assert itype == next(n[2] for n in NODES if n[1] == scenario)
    # each scenario's own simulator schedule shows through: a TTFT is never shorter than its simulator's
    # (the report rounds to 0.1 ms), and stays under half the 28 ms between two scenarios' TTFTs, which
    # a busy 2-core machine's late wake-ups do not reach in a median but swapped scenarios would
    for _node, scenario, _itype, ttft, _itl in NODES:
        assert ttft - 0.1 <= ttft_p50[(scenario, "concurrency 1")] < ttft + 14.0


def test_report_of_an_unknown_run_is_a_clear_error(fleet, finished_run):
    _, store, *_ = fleet
    result = cli("run", "report", "--run", "no-such-run", "--store", store)
    assert result.returncode == 2 and "no run 'no-such-run'" in result.stderr
