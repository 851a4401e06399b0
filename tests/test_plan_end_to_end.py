"""`plan` over real searches: two simulators with different knees, each searched by the agent as an instance
type of its own (a node of its own: a node's instance type is its Hello's) through a running collector, then `siliconbench-collector plan` on what it stored (asked
while the collector serves the store)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from siliconbench.agent.cli import app as agent_app
from siliconbench.core import verdict
from tests.programs import run_program
from tests.servers import start_collector, start_sim

SLO = "itl_p50_ms<=67"
# each stream in flight stretches every 30 ms gap by `slowdown`: the SLO holds up to 3 streams at 0.5, 5 at 0.25
KNEES = {"knee3.sim": ("0.5", 3.0), "knee5.sim": ("0.25", 5.0)}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A store with one search of each simulator, the collector still serving it."""
    tmp = tmp_path_factory.mktemp("plan-e2e")
    store = f"chdb://{tmp}/data"
    collector = start_collector(store, tmp / "collector.log")
    sims = {}
    with pytest.MonkeyPatch.context() as patch:
        # as in test_search_end_to_end: the agent's dispatch delay on a busy test machine (the simulator
        # shares its loop) must not stop a search as client-limited
        patch.setattr(verdict, "CLIENT_DELAY_MS", math.inf)
        try:
            for instance_type, (slowdown, _) in KNEES.items():
                sims[instance_type] = sim = start_sim(tmp / f"{instance_type}.log", "--ttft-ms", "10", "--itl-ms", "30",
                                                      "--slowdown-per-stream", slowdown)
                code, lines = run_program(agent_app, "search", "--target", sim.url, "--collector", collector.address,
                                          "--spool-dir", str(tmp / instance_type), "--slo", SLO, "--start", "2",
                                          "--max", "8", "--input-tokens", "16", "--output-tokens", "4", "--workers", "1",
                                          "--instance-type", instance_type, "--node-name", f"node-{instance_type}",
                                          "--run-id", f"e2e-plan-{instance_type}")
                assert code == 0, lines
            yield store, tmp
        finally:
            for sim in sims.values():
                sim.stop()
            collector.stop()


def plan(store: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", "plan", "--slo", SLO, "--input-tokens",
                           "16", "--output-tokens", "4", "--store", store, *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.timing
def test_plan_ranks_the_searched_types_by_fleet_cost_from_their_measured_capacity(searched):
    store, tmp = searched
    prices = tmp / "prices.csv"
    prices.write_text("instance_type,region,kind,usd_per_hour,currency,as_of,source\n"
                      "knee3.sim,us-east-1,on_demand,1.0,USD,2026-12,test\n"
                      "knee5.sim,us-east-1,on_demand,3.0,USD,2026-12,test\n", encoding="utf-8")
    result = plan(store, "--load", "60 req/s", "--prices", str(prices), "--candidates", "knee3.sim,knee5.sim,p5.48xlarge",
                  "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    by_type = {c["instance_type"]: c for c in document["choices"]}
    assert set(by_type) == {"knee3.sim", "knee5.sim"}
    for instance_type, (_, boundary) in KNEES.items():
        choice = by_type[instance_type]
        assert choice["simulated"] is True
        assert choice["evidence"]["control"] == "concurrency" and "Little's law" in choice["capacity_method"]
        assert f"{boundary:g} streams" in choice["capacity_method"]
        assert choice["nodes"] == math.ceil(60 * 1.2 / choice["capacity_rps"] - 1e-9)
        assert choice["usd_per_hour"] == pytest.approx(choice["nodes"] * choice["price"]["usd_per_hour"])
    assert by_type["knee5.sim"]["capacity_rps"] > by_type["knee3.sim"]["capacity_rps"]
    assert [c["usd_per_hour"] for c in document["choices"]] == sorted(c["usd_per_hour"] for c in document["choices"])
    assert [m["instance_type"] for m in document["missing"]] == ["p5.48xlarge"]
    assert any("SIMULATED" in w for w in document["warnings"])


def test_a_plan_for_another_workload_lists_every_searched_type_as_missing(searched):
    store, _ = searched
    result = plan(store, "--load", "10 req/s", "--output-tokens", "64")
    assert result.returncode == 0, result.stderr
    assert "## Missing" in result.stdout and "output tokens 4 vs 64" in result.stdout
    assert "--instance-type knee3.sim" in result.stdout and "--instance-type knee5.sim" in result.stdout
