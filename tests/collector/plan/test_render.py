"""The plan in every format: the recommendation, the arithmetic, the evidence, the price's date and source,
what is missing (with its command), and the warnings (SIMULATED, borrowed workload) wherever it is read."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.plan.demand import parse_load, workload_of_flags
from siliconbench.collector.plan.pricing import prices_from_file
from siliconbench.collector.plan.rank import PlanRequest, build_plan
from siliconbench.collector.plan.output import render_plan
from tests.collector.plan.stored import SLO, price_file, store_search


@pytest.fixture(scope="module")
def answer(store, tmp_path_factory):
    tag = uuid.uuid4().hex[:6]
    cheap, dear, sim, other, never = (f"{n}-{tag}" for n in ("cheap", "dear", "sim", "other", "never"))
    store_search(store, cheap, boundary=16.0, requests=400)   # 3 nodes, 4 at the lower bound
    store_search(store, dear, boundary=4.0)                   # 12 nodes
    store_search(store, sim, boundary=8.0, simulated=True)    # 6 nodes, no price
    store_search(store, other, boundary=8.0, output_tokens=64)  # borrowed
    path = price_file(tmp_path_factory.mktemp("prices") / "p.csv", {cheap: 30.0, dear: 10.0, other: 5.0})
    request = PlanRequest(parse_load("40 req/s"), workload_of_flags(512, 128), SLO,
                          prices_from_file(path, "us-east-1", "on_demand"), (cheap, dear, sim, other, never),
                          0.2, allow_other_workload=True)
    return build_plan(store, request), (cheap, dear, sim, other, never)


def test_json_lists_choices_cheapest_fleet_first_and_what_is_missing(answer):
    plan, (cheap, dear, sim, other, never) = answer
    document = json.loads(render_plan(plan, "json"))
    assert [(c["instance_type"], c["nodes"], c["usd_per_hour"]) for c in document["choices"]] == [
        (other, 6, 30.0), (cheap, 3, 90.0), (dear, 12, 120.0), (sim, 6, None)]
    first = document["choices"][1]
    assert {"instance_type", "nodes", "usd_per_hour", "usd_per_million_output_tokens", "capacity_rps",
            "search_id"} <= set(first)
    assert first["capacity_rps"] == 16.0 and first["nodes_at_lower_bound"] == 4
    assert first["price"]["as_of"] == "2026-03" and first["price"]["source"] == "test list"
    assert document["choices"][3]["simulated"] is True and document["choices"][3]["notes"]
    assert [m["instance_type"] for m in document["missing"]] == [never]
    assert document["missing"][0]["command"].startswith("siliconbench-agent search ")
    assert any("BORROWED" in w for w in document["warnings"]) and any("SIMULATED" in w for w in document["warnings"])


def test_markdown_leads_with_the_recommendation_and_shows_arithmetic_evidence_and_warnings(answer):
    plan, _ = answer
    text = render_plan(plan, "markdown")
    assert text.splitlines()[2].startswith("**Recommendation: 6 x other")
    assert "nodes = ceil(40 × (1 + 0.2) / 16 req/s) = 3" in text
    assert "fleet = 3 × $30/h = $90.00/h" in text
    assert "as of 2026-03 (test list)" in text
    assert "SIMULATED" in text and "BORROWED" in text and "Measure it: `siliconbench-agent search" in text


def test_csv_has_a_row_per_candidate_with_its_status_and_warning(answer):
    plan, (cheap, dear, sim, other, never) = answer
    rows = list(csv.DictReader(io.StringIO(render_plan(plan, "csv"))))
    assert [(r["status"], r["instance_type"]) for r in rows] == [
        ("choice", other), ("choice", cheap), ("choice", dear), ("choice", sim), ("missing", never)]
    assert "BORROWED" in rows[0]["warning"] and rows[3]["warning"] == "SIMULATED evidence"
    assert "no on_demand price" in rows[3]["note"] and "siliconbench-agent search" in rows[4]["note"]


def test_html_plots_fleet_cost_steps_and_cost_against_headroom(answer):
    plan, _ = answer
    page = render_plan(plan, "html")
    assert page.count("<svg") == 2
    assert "Fleet $/hour against target load" in page and "against SLO headroom at the boundary" in page
    assert "SIMULATED" in page and "BORROWED" in page and "Warning:" in page


def test_an_unknown_format_is_named(answer):
    plan, _ = answer
    with pytest.raises(InvalidOption, match="--format 'pdf' is not one of markdown, csv, json, html"):
        render_plan(plan, "pdf")
