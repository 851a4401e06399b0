"""A search as stored: each probe is an ordinary step tagged with its probe (search_probes), the answer
is the run's row of searches, and the curve, the evidence and the answer come back in one query."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import math
import re
import subprocess
import sys
import time

import pytest

from siliconbench.agent.search.method import Search
from siliconbench.core.search import SearchOptions
from siliconbench.agent.search.probe import ProbeSink
from siliconbench.agent.search.run import probe_message, result_message
from siliconbench.agent.sim import SimProfile
from siliconbench.collector.errors import InvalidBatch, InvalidOption, RunNotFound
from siliconbench.collector.export import export_rows
from siliconbench.collector.ingest import tables_of
from siliconbench.collector.reports import RENDERERS, Options, build_fleet_report, build_report
from siliconbench.collector.reports.search import readings_line, render_search
from siliconbench.collector.rollups import Selection
from siliconbench.collector.searches import NodeSearch, ProbeRow, load_search
from siliconbench.collector.service import TelemetryService
from siliconbench.core.slo import parse_slos
from siliconbench.core.wire import pb
from tests.agent.load.test_step import ListSink
from tests.agent.search.knee import KneeModel

KNEE = SimProfile(ttft_ms=20, itl_ms=10, slots=32)


async def searched(run_id: str, model=None, most: float = 256.0) -> ListSink:
    """A search against the knee model (or `model`), its steps' events and end event through a ProbeSink as
    the agent sends them."""
    sink = ListSink()
    probe_sink = ProbeSink(sink)
    model = model or KneeModel(KNEE, "concurrency", 1)
    now = time.time_ns()
    probe_sink.add(pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=now, scenario="A", model="m"))

    async def prober(value, requests, index):
        measured = await model(value, requests, index)
        probe_sink.add(pb.StepEvent(run_id=run_id, step=index, concurrency=int(value), mode="closed",
                                    requests=requests, start_unix_ns=now, end_unix_ns=now + 1))
        return measured

    search = Search(parse_slos("ttft_p99_ms<=80,ttft_p50_ms<=100"), SearchOptions(max=most), prober,
                    output_tokens=4, on_step=lambda probe: probe_sink.judged(probe_message(probe, run_id)))
    probe_sink.result = result_message(await search.run(), run_id)
    probe_sink.add(pb.RunEvent(run_id=run_id, phase=pb.PHASE_END, time_unix_ns=now, outcome="complete"))
    return sink


async def test_each_step_goes_out_tagged_with_its_probe_and_the_end_event_with_the_answer():
    sink = await searched("s1")
    assert all(s.HasField("search_probe") for s in sink.steps)
    assert [s.search_probe.index for s in sink.steps] == sorted(s.search_probe.index for s in sink.steps)
    _, end = sink.runs
    assert end.search.found and end.search.verified and end.search.binding == "ttft_p99_ms"
    assert end.search.probes == len({s.search_probe.index for s in sink.steps})


def test_a_step_the_search_never_judged_still_goes_out_untagged():
    sink = ListSink()
    probe_sink = ProbeSink(sink)
    probe_sink.add(pb.StepEvent(run_id="r", step=0))
    assert sink.steps == []  # waits for its verdict
    probe_sink.release()
    assert [s.HasField("search_probe") for s in sink.steps] == [False]


@pytest.fixture(scope="module")
def service(store):
    svc = TelemetryService(store, store_threads=1)
    yield svc
    svc.close()


async def test_the_curve_the_evidence_and_the_answer_are_one_query(service, store):
    sink = await searched("search-1")
    batch = pb.Batch(seq=1, batch_id="search-1/b/1", steps=sink.steps, runs=sink.runs)
    # what a stream does with the batch: parse and check it, then insert it
    assert service.inserter.write([service.parse("node-a", pb.AgentMessage(batch=batch).SerializeToString())]) == {}
    [node] = load_search(store, "search-1")
    assert node.agent_id == "node-a" and len(node.probes) == len(sink.steps)
    answer = node.answer
    assert answer is not None and answer.found and answer.verified and answer.control == "concurrency"
    assert answer.boundary == sink.runs[-1].search.boundary and answer.binding == "ttft_p99_ms"
    assert answer.bounds["ttft_p99_ms"] <= 80 and 0 < answer.headroom["ttft_p50_ms"] < 1
    screen = node.probes[0]  # a closed loop's probe screens first: too few requests for a p99 bound
    assert (screen.value, screen.verdict, screen.final) == (1.0, "extend", False)
    first = next(p for p in node.probes if p.final)
    assert (first.value, first.phase, first.verdict, first.slo_keys) == (1.0, "bracket", "pass",
                                                                          ("ttft_p99_ms", "ttft_p50_ms"))
    assert first.limits == (80.0, 100.0) and all(b is not None and b < 80 for b in first.bounds)
    boundary_probes = [p for p in node.probes if p.value == answer.boundary and p.phase == "verify"]
    assert boundary_probes and boundary_probes[-1].verdict == "pass"


def test_a_search_not_in_the_store_is_named(store):
    with pytest.raises(RunNotFound, match="no search 'nope'"):
        load_search(store, "nope")


def test_a_probe_whose_bounds_are_not_one_per_slo_is_refused():
    probe = pb.SearchProbe(search_id="s", slo_keys=["ttft_p99_ms"], slo_limits=[80.0, 1.0], slo_points=[1.0],
                           slo_bounds=[math.nan])
    step = pb.StepEvent(run_id="s", step=0, start_unix_ns=time.time_ns(), end_unix_ns=time.time_ns(),
                        search_probe=probe)
    with pytest.raises(InvalidBatch, match="slo_limits not one per slo_keys entry"):
        tables_of(pb.Batch(seq=1, batch_id="b", steps=[step]), "a")


@pytest.fixture(scope="module")
def stored_search(service, store):
    sink = asyncio.run(searched("search-r"))
    batch = pb.Batch(seq=1, batch_id="search-r/b/1", steps=sink.steps, runs=sink.runs)
    assert service.inserter.write([service.parse("node-b", pb.AgentMessage(batch=batch).SerializeToString())]) == {}
    return load_search(store, "search-r"), sink.runs[-1].search


def test_the_markdown_report_states_the_answer_the_method_and_each_probe(stored_search):
    nodes, result = stored_search
    text = render_search("search-r", nodes, "markdown")
    assert f"largest concurrency within SLO: {result.boundary:g} (verified)." in text
    assert "Binding: ttft\\_p99\\_ms" in text and "Method: bracket by doubling" in text
    assert "| 1 | 0,1 | bracket | 1 |" in text  # probe 1, steps 0 (its screen) and 1, at concurrency 1


def test_the_csv_report_has_a_row_per_step_and_slo(stored_search):
    nodes, _ = stored_search
    rows = list(csv.DictReader(io.StringIO(render_search("search-r", nodes, "csv"))))
    assert len(rows) == 2 * len(nodes[0].probes)
    assert {r["slo"] for r in rows} == {"ttft_p99_ms", "ttft_p50_ms"} and rows[0]["verified"] == "True"


def test_the_json_report_holds_the_answer_and_every_probe_s_bounds(stored_search):
    nodes, result = stored_search
    document = json.loads(render_search("search-r", nodes, "json"))
    [node] = document["nodes"]
    assert node["answer"]["boundary"] == result.boundary and node["answer"]["binding"] == "ttft_p99_ms"
    assert node["probes"][0]["bounds"]["ttft_p99_ms"]["limit"] == 80.0


def test_the_html_report_plots_bound_point_slo_failed_probes_and_boundary_per_slo(stored_search):
    nodes, result = stored_search
    page = render_search("search-r", nodes, "html")
    assert page.count("<svg") == 2  # one chart per SLO
    assert "ttft_p99_ms 95 % upper bound" in page and "ttft_p99_ms point estimate" in page
    assert "SLO ttft_p99_ms ≤ 80" in page
    assert re.search(r"<title>failed probe: concurrency [\d.]+, ms [\d.]+</title>", page)  # crossed, with values
    assert f"boundary {result.boundary:g}" in page


def test_a_stored_undecided_answer_is_reported_undecided_between_its_largest_pass_and_smallest_fail(service, store):
    slow = KneeModel(KNEE, "concurrency", 0, slow_share=1 / 105, slow_ms=300)  # 0.95 % late: never decided
    fast = KneeModel(KNEE, "concurrency", 0)

    async def model(value, requests, index):  # up to 3 pass, 4 undecided, 5 and past far over the limit
        return await (slow(1, requests, index) if value == 4 else fast(value if value < 4 else 128.0, requests, index))

    sink = asyncio.run(searched("search-u", model, most=8.0))
    batch = pb.Batch(seq=1, batch_id="search-u/b/1", steps=sink.steps, runs=sink.runs)
    assert service.inserter.write([service.parse("node-u", pb.AgentMessage(batch=batch).SerializeToString())]) == {}
    nodes = load_search(store, "search-u")
    text = render_search("search-u", nodes, "markdown")
    assert ("largest concurrency within SLO: undecided between 3 and 5: at 4 the data could not decide, every "
            "extension taken.") in text and "Largest pass: 3 (verified)." in text
    [node] = json.loads(render_search("search-u", nodes, "json"))["nodes"]
    assert (node["answer"]["boundary"], node["answer"]["undecided_to"], node["answer"]["undecided"]) == (3.0, 5.0, [4.0])


def test_an_unknown_format_is_named():
    with pytest.raises(InvalidOption, match="--format 'pdf' is not one of markdown, csv, json, html"):
        render_search("s", [], "pdf")


def test_report_search_of_an_unknown_id_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "siliconbench.collector", "report", "--search", "nope", "--store",
                             f"chdb://{tmp_path}/data"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: no search 'nope' in the store (its id is the search run's id: see `runs list`)"]


def test_the_fleet_report_compares_the_nodes_boundaries_by_scenario_and_instance_type(stored_search, store):
    _, result = stored_search
    report = build_fleet_report(store, "search-r")
    table = report.table("searches")
    assert [row[:6] for row in table.rows] == [["node-b", "A", "", "concurrency", f"{result.boundary:g}", "yes"]]
    assert "Largest load within the SLOs" in RENDERERS["markdown"].fleet(report)
    assert json.loads(RENDERERS["json"].fleet(report))["searches"][0]["boundary"] == f"{result.boundary:g}"


def test_export_writes_a_search_s_probes_and_answer(stored_search, store, tmp_path):
    export_rows(store, "search_probes", "csv", tmp_path / "probes.csv", runs=("search-r",))
    export_rows(store, "searches", "csv", tmp_path / "searches.csv", runs=("search-r",))
    probes = list(csv.DictReader(io.StringIO((tmp_path / "probes.csv").read_text())))
    [answer] = list(csv.DictReader(io.StringIO((tmp_path / "searches.csv").read_text())))
    assert len(probes) == len(stored_search[0][0].probes) and probes[0]["phase"] == "bracket"
    assert float(answer["boundary"]) == stored_search[1].boundary


def test_the_key_results_of_a_search_run_say_where_its_search_ended(stored_search, store):
    _, result = stored_search
    report = build_report(store, Selection(runs=("search-r",)), Options(cost=False))
    page = html.unescape(RENDERERS["html"].report(report))
    key = page[page.index('id="key-results"'):page.index('id="measured"')]
    assert (f"concurrency {result.boundary:g} is the largest within the SLOs (ttft_p99_ms<=80" in key
            and "verified, binding ttft_p99_ms" in key), key


def probe_row(step: int, probe: int, readings_from: str) -> ProbeRow:
    return ProbeRow(step, probe, 4.0, "bracket", "pass", "", 100, ("ttft_p99_ms",), (80.0,), (10.0,), (20.0,), False,
                    readings_from)


def test_the_report_says_where_each_probe_s_readings_came_from():
    stored = NodeSearch("a", (probe_row(0, 0, "collector"), probe_row(1, 1, "collector")), None)
    assert readings_line(stored) == "Readings: every probe's read from the collector's store."
    # an extended probe is judged on its last step: only that step's source counts
    mixed = NodeSearch("a", (probe_row(0, 0, "agent: x"), probe_row(1, 0, "collector"),
                             probe_row(2, 1, "agent: the collector did not answer (UNAVAILABLE: refused)"),
                             probe_row(3, 2, "")), None)
    assert readings_line(mixed) == ("Readings: probe(s) 2, 3 judged on the agent's own records: not said (an agent "
                                    "older than the store's readings); the collector did not answer (UNAVAILABLE: "
                                    "refused).")
    page = render_search("s", [mixed], "html")
    assert "<p>Readings: probe(s) 2, 3 judged on the agent&#x27;s own records: " in page
    [row] = [r for r in csv.DictReader(io.StringIO(render_search("s", [mixed], "csv"))) if r["step"] == "2"]
    assert row["readings_from"] == "agent: the collector did not answer (UNAVAILABLE: refused)"
    assert [p["readings_from"] for p in json.loads(render_search("s", [mixed], "json"))["nodes"][0]["probes"]] == [
        "agent: x", "collector", "agent: the collector did not answer (UNAVAILABLE: refused)", ""]
