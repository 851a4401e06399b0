"""The fleet report: built from the same per-request formulas as the single-run report, and rendered
by the same renderers, in every format."""

from __future__ import annotations

import csv
import io
import json

import pytest

from siliconbench.collector.errors import RunNotFound
from siliconbench.collector.reports import RENDERERS, build_fleet_report
from tests.collector import rows

# ttft 100 ms, gaps 10/20/30 ms of one token each, 5 ms tail: E2E 165 ms, TPOT (165 - 100) / 3 ms.
TPOT_MS = 65 / 3


@pytest.fixture
def fleet_run(store, unique_id) -> str:
    run_id = f"fleet-{unique_id}"
    for scenario, agent, itype in (("A", f"a-{unique_id}", "p5.48xlarge"), ("B", f"b-{unique_id}", "g6e.48xlarge")):
        store.insert("nodes", [rows.node(agent, itype)], f"n/{agent}")
        store.insert("runs", [rows.run(run_id, agent, scenario=scenario, simulated=True),
                              rows.run(run_id, agent, scenario=scenario, phase="end")], f"r/{agent}")
        store.insert("requests", [rows.request(run_id, agent, i, start_s=i * 0.2, gaps_ms=(10, 20, 30), tail_ms=5)
                                  for i in range(4)], f"q/{agent}")
    return run_id


def test_fleet_and_single_run_reports_compute_tpot_and_itl_the_same_way(store, fleet_run):
    report = build_fleet_report(store, fleet_run)
    single = store.query("SELECT tpot_ms, itl_ms FROM {db}.step_percentiles WHERE run_id = {r:String}",
                         {"r": fleet_run}).result_rows
    assert [r["scenario"] for r in report.scenarios] == ["A", "B"]
    for row in report.scenarios:
        assert row["tpot_ms"][0] == pytest.approx(TPOT_MS)
        assert row["itl_ms"] == pytest.approx([20.0, 30.0], abs=0.5)
    for tpot, itl in single:
        assert tpot[0] == pytest.approx(TPOT_MS) and itl[0] == pytest.approx(20.0, abs=0.5)


def test_every_renderer_renders_the_fleet_report(store, fleet_run):
    report = build_fleet_report(store, fleet_run)
    text = {fmt: renderer.fleet(report) for fmt, renderer in RENDERERS.items()}
    assert "SIMULATED target" in text["markdown"] and "UNFINISHED" not in text["markdown"]
    assert any(line.startswith("| A | p5.48xlarge | concurrency 1 | 1 | 4 | 0 | 100.0 |") for line in text["markdown"].splitlines())
    table = list(csv.DictReader(io.StringIO(text["csv"])))
    assert [(r["scenario"], r["requests"]) for r in table] == [("A", "4"), ("B", "4")]
    assert float(table[0]["TPOT p50"]) == pytest.approx(TPOT_MS)
    doc = json.loads(text["json"])
    assert (doc["run_id"], doc["state"], len(doc["scenarios"])) == (fleet_run, "complete", 2)
    assert "<table id=\"table-scenarios\">" in text["html"] and "SIMULATED target" in text["html"]


def test_the_fleet_report_of_an_unknown_run_is_run_not_found(store):
    with pytest.raises(RunNotFound, match="no run 'no-such-fleet-run'"):
        build_fleet_report(store, "no-such-fleet-run")


def test_a_scenario_without_a_successful_request_states_no_latency_not_zero(store, unique_id):
    run_id, agent = f"fleet-{unique_id}", f"f-{unique_id}"
    store.insert("runs", [rows.run(run_id, agent, scenario="F")], f"r/{agent}")
    store.insert("requests", [rows.request(run_id, agent, i, error="timeout") for i in range(3)], f"q/{agent}")
    table = build_fleet_report(store, run_id).table("scenarios")
    [row] = [dict(zip((c.name for c in table.columns), r)) for r in table.rows]
    assert (row["requests"], row["errors"]) == (3, 3)
    assert [row[name] for name in ("TTFT p50", "TTFT p99", "ITL p50", "TPOT p50", "E2E p99")] == [None] * 5
