"""`plan --validate` against simulators: one node type searched, planned for a load, then the load replayed on
the planned node count as a fleet run, once on nodes as fast as the searched one (every SLO held: exit 0) and
once on slower nodes under the same instance type (an SLO broken: exit 10)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from siliconbench.agent.cli import app as agent_app
from siliconbench.core import verdict
from siliconbench.core.errors import ExitCode
from tests.programs import run_program
from tests.servers import start_collector, start_node, start_sim

SLO = "itl_p50_ms<=67"
TYPE = "knee.sim"
# each stream in flight stretches every 30 ms gap by half: the SLO holds up to 3 streams at once
FAST = ("--ttft-ms", "10", "--itl-ms", "30", "--slowdown-per-stream", "0.5")
SLOW = ("--ttft-ms", "10", "--itl-ms", "80", "--slowdown-per-stream", "0.5")  # every gap over the SLO
PLAN = ("plan", "--load", "20 req/s", "--slo", SLO, "--input-tokens", "16", "--output-tokens", "4")


def collector_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A collector serving a store with one search of the fast simulator as TYPE; yields its address, the store,
    the work folder and the planned node count."""
    tmp = tmp_path_factory.mktemp("validate-e2e")
    store = f"chdb://{tmp}/data"
    collector = start_collector(store, tmp / "collector.log")
    sim = start_sim(tmp / "searched-sim.log", *FAST)
    try:
        with pytest.MonkeyPatch.context() as patch:
            # as in test_search_end_to_end: the agent's dispatch delay on a busy test machine (the simulator
            # shares its loop) must not stop a search as client-limited
            patch.setattr(verdict, "CLIENT_DELAY_MS", math.inf)
            code, lines = run_program(agent_app, "search", "--target", sim.url, "--collector", collector.address,
                                      "--spool-dir", str(tmp / "search"), "--slo", SLO, "--start", "2", "--max", "8",
                                      "--input-tokens", "16", "--output-tokens", "4", "--workers", "1",
                                      "--instance-type", TYPE, "--node-name", "searched", "--run-id", "validate-search")
        assert code == 0, lines
        sim.stop()
        planned = collector_cli(*PLAN, "--format", "json", "--store", store)
        assert planned.returncode == 0, planned.stderr
        [choice] = json.loads(planned.stdout)["choices"]
        assert choice["instance_type"] == TYPE and choice["search_id"] == "validate-search"
        yield collector.address, store, tmp, choice["nodes"]
    finally:
        sim.stop()
        collector.stop()


def validate(searched, scenario: str, profile: tuple[str, ...]) -> subprocess.CompletedProcess:
    """The planned node count of TYPE nodes labelled `scenario` beside `profile`'s simulators, and the plan
    validated on them."""
    address, store, tmp, nodes = searched
    processes = [p for i in range(nodes) for p in start_node(address, tmp, f"{scenario}-{i}", scenario, TYPE, *profile)]
    try:
        return collector_cli(*PLAN, "--validate", "--collector", address, "--wait-s", "60", "--validate-s", "4",
                             "--selector", f"scenario={scenario}", "--plan-out", str(tmp / f"{scenario}.json"),
                             "--format", "json", "--store", store)
    finally:
        for process in processes:
            process.stop()


@pytest.mark.timing
def test_a_fleet_as_fast_as_the_searched_node_holds_the_slo_on_every_node(searched):
    done = validate(searched, "fast", FAST)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    assert verdict["held"] is True and verdict["simulated"] is True and verdict["slo"] == {"itl_p50_ms": 67.0}
    assert len(verdict["nodes"]) == searched[3] and all(n["instance_type"] == TYPE for n in verdict["nodes"])
    assert all(n["requests"] > 0 and n["values"]["itl_p50_ms"] < 67 for n in verdict["nodes"])
    assert f"on {searched[3]} x {TYPE} (SIMULATED evidence): " in done.stderr
    replay = json.loads((searched[2] / "fast.json").read_text())  # the plan file `run start --plan` takes
    assert replay["rates"] == [pytest.approx(20 / searched[3])] and replay["duration_s"] == 4.0
    assert (replay["input_tokens"], replay["output_tokens"], replay["search"]) == (16, 4, None)


@pytest.mark.timing
def test_slower_nodes_under_the_same_instance_type_break_the_slo_and_exit_10(searched):
    done = validate(searched, "slow", SLOW)
    assert done.returncode == ExitCode.SLO_BROKEN, done.stdout + done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    assert verdict["held"] is False
    assert all(n["broken"] == ["itl_p50_ms"] and n["values"]["itl_p50_ms"] >= 80 for n in verdict["nodes"])


def test_validating_without_a_connected_fleet_is_one_line_naming_what_is_missing(searched):
    address, store, *_ = searched
    done = collector_cli(*PLAN, "--validate", "--collector", address, "--selector", "scenario=none",
                         "--store", store)
    assert done.returncode == ExitCode.BAD_INPUT and "Traceback" not in done.stderr
    assert f"0 connected agents match {{'instance-type': '{TYPE}', 'scenario': 'none'}}" in done.stderr
