"""A fleet search as on EKS, on loopback: one collector, two agent daemons each beside its own simulator
with its own capacity, one `run start` whose plan holds a `search:` section, then each node's stored
answer and the `run report` that compares them.

Each simulator stretches every ITL gap by half its base per stream in flight (SimProfile.steady_itl_ms),
so under ITL p50 <= 67 ms node-a (30 ms: 60 ms at 3 streams, 75 at 4) holds 3 streams and node-b (20 ms:
60 ms at 5, 70 at 6) holds 5. The steps are steep and the SLO a median, so a loaded machine's late
wake-ups cannot move either answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import Proc, start_collector, start_sim

NODES = [  # node, scenario, instance type, simulator ITL ms, true boundary
    ("node-a", "A", "g6e.48xlarge", 30.0, 3),
    ("node-b", "B", "p5.48xlarge", 20.0, 5),
]
PLAN = """\
input_tokens: 16
output_tokens: 4
warmup_requests: 2
repetitions: 1
workers: 1
search:
  slo: "itl_p50_ms<=67"
  start: 2
  max: 8
  verify_factor: 2
  min_requests: 8
"""
# The daemons share this 2-core test machine with everything else, so their dispatch delay says more of
# the machine than of the agent: the client-limited verdict (which stops a search:
# tests/agent/search/test_method.py) is set out of reach in them, as the in-process search tests do.
DAEMON = ("import math, sys\n"
          "from siliconbench.core import verdict\n"
          "for name in ('CLIENT_DELAY_MS', 'SENDER_CPU_PCT'):\n"
          "    setattr(verdict, name, math.inf)\n"
          "sys.argv[0] = 'siliconbench-agent'\n"
          "from siliconbench.agent.cli import main\n"
          "main()\n")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True,
                          timeout=timeout)


def start_node(collector: str, workdir: Path, node: str, scenario: str, instance_type: str,
               itl_ms: float) -> list[Proc]:
    sim = start_sim(workdir / f"{node}-sim.log", "--ttft-ms", "10", "--itl-ms", str(itl_ms),
                    "--slowdown-per-stream", "0.5")
    env = {"SILICONBENCH_NODE_NAME": node, "SILICONBENCH_SCENARIO": scenario,
           "SILICONBENCH_INSTANCE_TYPE": instance_type}
    daemon = Proc.start(f"daemon {node}", ["-c", DAEMON, "daemon", "--target", sim.url, "--collector", collector,
                                           "--spool-dir", str(workdir / node)], workdir / f"{node}-daemon.log", env)
    return [daemon, sim]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The fleet searched and stopped; yields (store, run id, the watch's transcript)."""
    tmp = tmp_path_factory.mktemp("fleet-search")
    store = f"chdb://{tmp}/data"
    collector = start_collector(store, tmp / "collector.log")
    processes: list[Proc] = []
    try:
        for node, scenario, itype, itl, _ in NODES:
            processes += start_node(collector.address, tmp, node, scenario, itype, itl)
        (tmp / "plan.yaml").write_text(PLAN)
        started = cli("run", "start", "--plan", str(tmp / "plan.yaml"), "--collector", collector.address,
                      "--min-agents", str(len(NODES)), "--wait-s", "60", "--start-delay-s", "1")
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        watched = cli("run", "status", "--run", run_id, "--watch", "--interval-s", "0.5", "--collector",
                      collector.address, timeout=600)
        assert watched.returncode == 0, watched.stdout + watched.stderr
    finally:
        for process in processes:
            process.stop()
        collector.stop()  # the embedded store serves one process at a time: the reads below need it
    yield store, run_id, watched.stdout


@pytest.mark.timing
def test_every_node_searches_and_stores_its_own_boundary(searched):
    store, run_id, transcript = searched
    assert f"run {run_id}: finished" in transcript
    report = cli("report", "--search", run_id, "--format", "json", "--store", store)
    assert report.returncode == 0, report.stderr
    nodes = json.loads(report.stdout)["nodes"]
    assert len(nodes) == len(NODES)
    for node, *_, truth in NODES:
        [answer] = [n["answer"] for n in nodes if node in json.dumps(n)]
        assert answer["boundary"] == truth and answer["verified"] is True, (node, answer)


@pytest.mark.timing
def test_run_report_compares_the_nodes_boundaries_by_scenario_and_instance_type(searched):
    store, run_id, _ = searched
    report = cli("run", "report", "--run", run_id, "--store", store)
    assert report.returncode == 0, report.stderr
    rows = {line.split("|")[1].strip(): [c.strip().replace("\\_", "_") for c in line.strip("|").split("|")]
            for line in report.stdout.splitlines() if line.startswith("| node-")}  # markdown escapes _
    assert set(rows) == {node for node, *_ in NODES}
    for node, scenario, itype, _, truth in NODES:
        _, row_scenario, row_itype, control, boundary, verified, binding = rows[node][:7]
        assert (row_scenario, row_itype, control, boundary, verified, binding) == (
            scenario, itype, "concurrency", str(truth), "yes", "itl_p50_ms")
