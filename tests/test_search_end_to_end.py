"""`siliconbench-agent search` as a user runs it: a simulator and a collector as real processes, the agent's
command line in this process, then the collector's `report --search` on what it stored."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from siliconbench.agent.cli import app as agent_app
from siliconbench.agent.search.stored import StoredReadings
from siliconbench.core import verdict
from siliconbench.core.errors import ExitCode
from siliconbench.core.search import FROM_STORE
from tests.faults.procs import sql, sql_rows
from tests.programs import run_program
from tests.servers import HeldPort, start_collector, start_sim


@pytest.fixture(autouse=True)
def loaded_machine(monkeypatch):
    """The agent runs in the test process beside the test machine's other work, which can hold the process
    off its core for milliseconds: its dispatch delay says more of the machine than of the agent here, so
    the client-limited verdict's delay rule (which stops a search: tests/agent/search/test_method.py) is set
    out of reach. A late event loop alone no longer limits anything (node busy)."""
    monkeypatch.setattr(verdict, "CLIENT_DELAY_MS", math.inf)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    # each stream in flight stretches every 30 ms gap by half: 60 ms at 3 streams, 75 ms at 4
    server = start_sim(tmp_path_factory.mktemp("sim") / "sim.log", "--ttft-ms", "10", "--itl-ms", "30",
                       "--slowdown-per-stream", "0.5")
    yield server
    server.stop()


@pytest.fixture
def servers(sim, tmp_path):
    store = f"chdb://{tmp_path}/data"
    collector = start_collector(store, tmp_path / "collector.log")
    yield store, collector, sim, tmp_path
    collector.stop()


def search(servers, run_id: str, slo: str, *more: str) -> tuple[int, list[str]]:
    _, collector, sim, tmp = servers
    return run_program(agent_app, "search", "--target", sim.url, "--collector", collector.address,
                       "--spool-dir", str(tmp / run_id), "--slo", slo, "--start", "2", "--max", "8",
                       "--input-tokens", "16", "--output-tokens", "4", "--workers", "1", "--run-id", run_id, *more)


@pytest.mark.timing
def test_search_finds_the_boundary_stores_it_and_the_report_shows_it(servers):
    code, lines = search(servers, "e2e-search", "itl_p50_ms<=67")
    assert code == 0, lines
    assert "largest concurrency within SLO: 3 (verified)." in lines
    assert any(line.startswith("Binding: ITL p50 (bound ") for line in lines)
    assert any(line.startswith("probe 1 (bracket) concurrency 2: ") and line.endswith("-> PASS") for line in lines)
    # every probe judged on the readings its collector read from the store
    probes = [line for line in lines if line.startswith("probe ")]
    assert probes and all(" requests read from the store; " in line for line in probes), probes
    store, collector, *_ = servers
    collector.stop()  # the embedded store is the collector's while it runs
    report = subprocess.run([sys.executable, "-m", "siliconbench.collector", "report", "--search", "e2e-search",
                             "--format", "json", "--store", store], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    [node] = json.loads(report.stdout)["nodes"]
    assert node["answer"]["boundary"] == 3.0 and node["answer"]["verified"] is True
    # the candidate verified; the value above already failed on its lower bound, decided
    assert [p["verdict"] for p in node["probes"] if p["phase"] == "verify"] == ["pass"]
    assert any(p["value"] == 4.0 and p["verdict"] == "fail" for p in node["probes"])
    assert {p["readings_from"] for p in node["probes"]} == {"collector"}  # each probe's readings from the store


def test_a_target_that_fails_the_first_probe_is_an_answer_with_its_own_exit_code(servers):
    code, lines = search(servers, "e2e-none", "itl_p50_ms<=5", "--json")
    assert code == ExitCode.NO_LOAD_WITHIN_SLO
    answer = json.loads(next(line for line in lines if line.startswith("{")))
    assert answer["boundary"] is None and answer["probes"][0]["verdict"] == "fail"


def test_a_collector_killed_mid_search_leaves_probes_judged_on_the_agent_s_own_readings_and_loses_nothing(
        sim, tmp_path, monkeypatch):
    """kill -9 of the collector once the first probe step was read from the store, restarted once the next
    was judged without it: that one says why, the search goes on to the same answer, the probes after the
    restart are read from the store again, and every request is stored once."""
    store = f"chdb://{tmp_path}/data"
    collector = start_collector(store, tmp_path / "collector.log")
    port = collector.port
    sources: list[str] = []
    real_read = StoredReadings.__call__

    async def read_then_fault(self, steps, records):
        nonlocal collector
        readings, source = await real_read(self, steps, records)
        sources.append(source)
        if len(sources) == 1:
            collector.kill9()
        elif len(sources) == 2:  # between probe steps: no request in flight is held up by the blocking start
            collector = start_collector(store, tmp_path / "collector.log", port=port)
        return readings, source

    monkeypatch.setattr(StoredReadings, "__call__", read_then_fault)
    with HeldPort(port):  # while the collector is down, nothing else can take its port
        code, lines = run_program(agent_app, "search", "--target", sim.url, "--collector", f"127.0.0.1:{port}",
                                  "--spool-dir", str(tmp_path / "spool"), "--slo", "itl_p50_ms<=67", "--start", "2",
                                  "--max", "8", "--input-tokens", "16", "--output-tokens", "4", "--workers", "1",
                                  "--run-id", "e2e-fault", "--json")
        collector.stop()
    assert code == 0, lines
    answer = json.loads(next(line for line in lines if line.startswith("{")))
    assert answer["boundary"] == 3.0 and answer["verified"] is True
    assert sources[0] == FROM_STORE and sources[-1] == FROM_STORE, sources
    assert sources[1].startswith("agent: the collector did not answer (UNAVAILABLE"), sources
    # each probe's readings_from, as judged for good, in the answer and in the store
    stored = sql_rows(store, "SELECT readings_from FROM siliconbench.search_probes WHERE run_id = 'e2e-fault' "
                             "ORDER BY step")
    assert [row["readings_from"] for row in stored] == sources
    sent = sql(store, "SELECT requests_sent FROM siliconbench.runs WHERE run_id = 'e2e-fault' AND phase = 'end'")
    rows, distinct = sql(store, "SELECT count(), uniqExact(request_id) FROM siliconbench.requests "
                                "WHERE run_id = 'e2e-fault'")[0]
    assert rows == distinct == sent[0][0] != "0"
