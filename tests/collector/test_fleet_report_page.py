"""The fleet report reads like the single-run report: what was measured (model, target, SIMULATED,
workload), charts per scenario and instance type, cost, in every format, written to a file with `-o`, and
pointing to `report --run RUN` for every table per node. Its HTML is looked at in headless Chromium."""

from __future__ import annotations

import csv
import io
import json

import pytest

from siliconbench.collector.cli import app
from siliconbench.collector.reports import RENDERERS, build_fleet_report
from tests.collector import rows
from tests.collector.chromium import probe
from tests.programs import run_program

PROBE = """<script>
window.addEventListener('load', () => {
  const charts = {};
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    charts[svg.getAttribute('aria-label')] = {
      width: svg.getBoundingClientRect().width,
      lines: [...svg.querySelectorAll('polyline')].map(l => l.getAttribute('points').trim().split(/\\s+/).length),
      bars: svg.querySelectorAll('rect[fill^="#"]').length - 1,
      legend: [...svg.closest('figure').querySelectorAll('.legend li')].map(li => li.innerText),
    };
  }
  window.__result = {charts, header: document.querySelector('#measured').innerText,
                     key: document.querySelector('#key-results').innerText};
});
</script>"""


@pytest.fixture(scope="module")
def fleet_run(store) -> str:
    run_id = "fleet-page-run"
    for scenario, agent, itype in (("A", "fleet-page-a", "p5.48xlarge"), ("B", "fleet-page-b", "g6e.48xlarge")):
        store.insert("nodes", [rows.node(agent, itype)], f"n/{agent}")
        store.insert("runs", [rows.run(run_id, agent, scenario=scenario, simulated=True),
                              rows.run(run_id, agent, scenario=scenario, phase="end")], f"r/{agent}")
        store.insert("requests", [rows.request(run_id, agent, i, step=s, concurrency=c, start_s=i * 0.2,
                                               ttft_ms=90.0 + 10 * s + i, gaps_ms=(10, 20, 30), tail_ms=5)
                                  for s, c in enumerate((1, 4)) for i in range(8)], f"q/{agent}")
    return run_id


def test_every_format_says_what_was_measured_its_cost_and_where_the_per_node_tables_are(store, fleet_run):
    report = build_fleet_report(store, fleet_run)
    text = {fmt: renderer.fleet(report) for fmt, renderer in RENDERERS.items()}
    for fmt in ("markdown", "html"):
        for part in ("Model", "Target", "SIMULATED", "Workload", f"report --run {fleet_run}", "Cost per 1M tokens"):
            assert part in text[fmt], (fmt, part)
    doc = json.loads(text["json"])
    assert doc["measured"]["Target"].endswith("(SIMULATED)") and doc["measured"]["Workload"]
    assert doc["per_node_report"] == f"siliconbench-collector report --run {fleet_run} --format json"
    priced = {c["instance_type"]: c["usd_per_m_output_at_peak"] for c in doc["costs"]}
    assert priced["p5.48xlarge"] > 0
    table = {r["scenario"]: r for r in csv.DictReader(io.StringIO(text["csv"]))}
    assert table["A"]["simulated"] == "1" and table["A"]["model"] and table["A"]["workload"]
    assert float(table["A"]["usd_per_m_output_at_peak"]) == pytest.approx(priced["p5.48xlarge"])


def test_run_report_writes_its_file_with_o(store, fleet_run, tmp_path):
    page = tmp_path / "fleet.html"
    code, lines = run_program(app, "run", "report", "--run", fleet_run, "--format", "html", "-o", str(page),
                              "--store", store.location.shown)
    assert code == 0 and lines == [f"wrote {page}"]
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_in_chromium_the_fleet_page_has_real_charts_per_scenario_and_instance_type(store, fleet_run, tmp_path):
    result = probe(RENDERERS["html"].fleet(build_fleet_report(store, fleet_run)), PROBE, tmp_path)
    assert result["errors"] == []
    charts = result["charts"]
    ttft = charts["TTFT vs concurrency: p50, p90–p99 band"]
    assert ttft["width"] > 300 and ttft["lines"] == [2, 2]
    assert ttft["legend"] == ["scenario A · p5.48xlarge", "scenario B · g6e.48xlarge"]
    assert charts["$ per 1M output tokens at peak"]["bars"] >= 1
    assert "SIMULATED" in result["header"] and "Workload" in result["header"]
    assert "peak" in result["key"]
