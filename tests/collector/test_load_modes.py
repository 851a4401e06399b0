"""Every load mode end to end: a run of closed-loop, uncapped and capped rate, explicit and
duration-bounded steps, stored through the real ingest, reported in every format, single-run and
fleet; a sweep point is (mode, concurrency, rate), and a step the agent flagged is marked with why."""

from __future__ import annotations

import csv
import html
import io
import json

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_fleet_report, build_report
from siliconbench.collector.reports.verdict import banners, verdict
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm

NO_COST = Options(cost=False)


@pytest.fixture
def modes_run(store, unique_id) -> str:
    run_id = f"modes-{unique_id}"
    lm.store_run(store, run_id, f"m-{unique_id}", "M")
    return run_id


def test_each_mode_concurrency_and_rate_is_its_own_sweep_point(store, modes_run):
    report = build_report(store, Selection(runs=(modes_run,)), NO_COST)
    points = report.figures.points
    assert sorted(report.table("scaling").rows[i][1] for i in range(len(points))) == sorted(lm.LABELS)
    assert all(p.repetitions == 2 for p in points)  # repetitions of one point, never different rates


def test_littles_law_per_mode_finds_nothing_wrong_with_a_consistent_run(store, modes_run):
    report = build_report(store, Selection(runs=(modes_run,)), NO_COST)
    assert not [f for f in report.findings if f.severity == "warning"], [f.line() for f in report.findings]


def test_the_offered_load_table_shows_offered_sent_and_completed_rates(store, modes_run):
    table = build_report(store, Selection(runs=(modes_run,)), NO_COST).table("load")
    rows = {row[1]: dict(zip([c.name for c in table.columns], row)) for row in table.rows}
    assert set(rows) == {"poisson 4 req/s", "poisson 8 req/s", "constant 8 req/s, cap 2"}
    four = rows["poisson 4 req/s"]
    assert four["offered req/s"] == 4 and four["sent req/s"] == pytest.approx(4.0)   # 7 gaps of 0.25 s
    assert four["completed req/s"] == pytest.approx(8 / (1.75 + lm.E2E_S))
    assert four["dispatch delay p99"] == pytest.approx(1.0)
    assert four["mean in flight"] == pytest.approx(8 * lm.E2E_S / (1.75 + lm.E2E_S))


def test_a_closed_step_reads_its_mean_in_flight(store, modes_run):
    table = build_report(store, Selection(runs=(modes_run,)), NO_COST).table("scaling")
    rows = {row[1]: dict(zip([c.name for c in table.columns], row)) for row in table.rows}
    assert rows["concurrency 4"]["mean in flight"] == pytest.approx(4.0)
    assert rows["concurrency 4"]["scaling"] == pytest.approx(2.0)   # 40 req/s at 4 against 20 at 2
    assert rows["poisson 4 req/s"]["scaling"] is None               # scaling compares closed-loop points only


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_every_format_names_the_client_limited_figures_and_notes_the_busy_node_with_its_cause(store, modes_run, fmt):
    report = build_report(store, Selection(runs=(modes_run,)), NO_COST)
    text = RENDERERS[fmt].report(report)
    text = html.unescape(text) if fmt == "html" else text
    assert "client-limited: dispatch delay p99 12.5 ms, 10% of a request's time" in text
    assert ("node busy: event-loop lag p99 12.0 ms while the client sent on time (dispatch delay p99 1.0 ms); "
            "node CPU 97% of all cores, the server's processes 180% of a core, the agent 5% of a core") in text
    if fmt == "csv":
        table = list(csv.DictReader(io.StringIO(text)))
        assert sorted(r["load"] for r in table) == sorted(lm.LABELS)
        flagged = {r["load"] for r in table if r["flags"]}
        assert flagged == {lm.LIMITED_POINT, lm.BUSY_POINT} and {r["publishable"] for r in table} == {"0"}
    elif fmt == "json":
        doc = json.loads(text)
        assert doc["publishable"] is False
        assert {f["point"] for f in doc["flags"]} == {lm.LIMITED_POINT, lm.BUSY_POINT}
    else:
        assert f"NOT publishable as is: throughput and latency of M at {lm.LIMITED_POINT}: client-limited" in text
        for label in lm.LABELS:
            assert label in text


def test_the_client_limited_point_is_marked_in_every_table_that_shows_it(store, modes_run):
    report = build_report(store, Selection(runs=(modes_run,)), NO_COST)
    for key in ("scaling", "load", "steps"):
        table = report.table(key)
        assert [f.check for f in table.findings if f.point == lm.LIMITED_POINT] == ["client-limited"], key
        marked = [row for row in table.rows if "client-limited" in str(row[-1])]
        assert marked and all(lm.LIMITED_POINT in row for row in marked), key
    assert not [f for f in report.table("ttft").findings if f.check == "client-limited"]  # concurrency 2 only


def test_a_busy_node_whose_client_sent_on_time_leaves_the_report_publishable(store, unique_id):
    run_id = f"busy-{unique_id}"
    lm.store_run(store, run_id, f"b-{unique_id}", "B", steps=2)   # concurrency 2, then poisson 4 req/s (node busy)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    [note] = report.flags
    assert (note.check, note.severity, note.point) == ("node busy", "note", lm.BUSY_POINT)
    assert "the client sent the load asked for, so the figures stand" in note.message
    assert report.publishable, banners(report)


def test_a_step_without_its_end_record_is_reported_partial(store, unique_id):
    run_id = f"cut-{unique_id}"
    lm.store_run(store, run_id, f"c-{unique_id}", "C", drop_step_event=1)   # poisson 4 req/s, repetition 0
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    [partial] = [f for f in report.flags if f.check == "partial step"]
    # its requests say only "concurrency 0": an uncapped open-loop step whose rate was never recorded
    assert partial.point == "open loop (rate not recorded)" and "1 of 1 step(s)" in partial.message
    steps = report.table("steps")
    assert [row[1] for row in steps.rows if "partial" in row[-1]] == [1]
    assert "partial steps" in verdict(report)


def test_a_report_over_two_rate_runs_compares_the_same_points(store, modes_run, unique_id):
    other = f"modes2-{unique_id}"
    lm.store_run(store, other, f"n-{unique_id}", "N")
    report = build_report(store, Selection(runs=(modes_run, other)), NO_COST)
    vs = [row[-2] for row in report.table("scaling").rows]
    assert vs == [pytest.approx(0.0)] * len(vs)   # identical runs: every point against its own twin


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_the_fleet_report_has_one_row_per_scenario_and_point_in_every_format(store, unique_id, fmt):
    run_id = f"fleet-modes-{unique_id}"
    for scenario in ("A", "B"):
        lm.store_run(store, run_id, f"{scenario}-{unique_id}", scenario)
    report = build_fleet_report(store, run_id)
    rows = report.table("scenarios").rows
    assert [(r[0], r[2]) for r in rows] == [(s, label) for s in "AB" for label in
                                            ("concurrency 2", "concurrency 4", "constant 8 req/s, cap 2",
                                             "poisson 4 req/s", "poisson 8 req/s")]
    assert [r[4] for r in rows if r[2] == "poisson 4 req/s"] == [16, 16]   # 8 requests x 2 repetitions
    text = RENDERERS[fmt].fleet(report)
    assert "poisson 8 req/s" in text
    if fmt in ("markdown", "html"):
        assert "NOT publishable as is" in text


def test_a_closed_step_with_a_short_tail_states_its_time_at_full_concurrency(store, unique_id):
    """The issue's case: 40 requests of 100 ms at concurrency 16 on a server that never slows down run
    rounds of 16, 16 and 8, so all 16 streams are in flight for two thirds of the step."""
    from tests.collector import rows

    store.insert("runs", [rows.run(unique_id, "t1")], f"r/{unique_id}")
    store.insert("requests", [rows.request(unique_id, "t1", k, concurrency=16, start_s=(k // 16) * 0.1, ttft_ms=40,
                                           gaps_ms=(10.0,) * 6) for k in range(40)], unique_id)
    report = build_report(store, Selection(runs=(unique_id,)), NO_COST)
    [row] = report.table("scaling").rows
    named = dict(zip([c.name for c in report.table("scaling").columns], row))
    assert named["time at full concurrency"] == pytest.approx(100 * 2 / 3)
    assert named["mean in flight"] == pytest.approx(40 * 0.1 / 0.3)
    [note] = [f for f in report.findings if f.check == "steady state"]
    assert note.message.startswith("all 16 streams in flight for 67% of the step (mean in flight 13.3)")


def test_rate_points_have_no_full_concurrency_share(store, modes_run):
    table = build_report(store, Selection(runs=(modes_run,)), NO_COST).table("scaling")
    rows_by_load = {row[1]: dict(zip([c.name for c in table.columns], row)) for row in table.rows}
    assert rows_by_load["concurrency 4"]["time at full concurrency"] == pytest.approx(100)
    assert rows_by_load["poisson 4 req/s"]["time at full concurrency"] is None


def _short_tail_run(store, run_id: str) -> None:
    """Requests of 100 ms (TTFT 40 ms, then 6 one-token chunks 10 ms apart) on a server that never slows
    down: concurrency 1, three one after another; concurrency 16, 40 in rounds of 16, 16 and 8."""
    from tests.collector import rows

    store.insert("runs", [rows.run(run_id, "t1")], f"r/{run_id}")
    one = [rows.request(run_id, "t1", k, step=0, concurrency=1, start_s=k * 0.1, ttft_ms=40, gaps_ms=(10.0,) * 6)
           for k in range(3)]
    many = [rows.request(run_id, "t1", k, step=1, concurrency=16, start_s=1 + (k // 16) * 0.1, ttft_ms=40,
                         gaps_ms=(10.0,) * 6) for k in range(40)]
    store.insert("requests", one + many, run_id)


def test_steady_throughput_leaves_out_the_ramp_and_drain_and_scales_by_the_concurrency(store, unique_id):
    _short_tail_run(store, unique_id)
    table = build_report(store, Selection(runs=(unique_id,)), NO_COST).table("scaling")
    named = {row[1]: dict(zip([c.name for c in table.columns], row)) for row in table.rows}
    sixteen = named["concurrency 16"]
    assert sixteen["output tok/s"] == pytest.approx(40 * 7 / 0.3)        # the whole step: 933
    assert sixteen["steady output tok/s"] == pytest.approx(32 * 7 / 0.2)  # its first two rounds: 1,120
    assert sixteen["scaling"] == pytest.approx(40 / 3)                   # the x13.3
    assert sixteen["steady scaling"] == pytest.approx(16)
    assert named["concurrency 1"]["steady output tok/s"] == pytest.approx(70)


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_every_format_states_whole_step_and_steady_throughput_and_which_is_which(store, unique_id, fmt):
    _short_tail_run(store, unique_id)
    text = RENDERERS[fmt].report(build_report(store, Selection(runs=(unique_id,)), NO_COST))
    if fmt == "csv":
        table = {r["load"]: r for r in csv.DictReader(io.StringIO(text))}
        assert float(table["concurrency 16"]["steady_output_tps"]) == pytest.approx(1120)
        assert float(table["concurrency 16"]["output_tps"]) == pytest.approx(933.3, abs=0.1)
        return
    if fmt == "json":
        doc = json.loads(text)
        assert {p["concurrency"]: round(p["steady_output_tps"]) for p in doc["points"]} == {1: 70, 16: 1120}
        assert any(d.startswith("Steady throughput (closed loop)") for d in doc["definitions"])
        return
    text = html.unescape(text) if fmt == "html" else text
    assert "steady output tok/s" in text and "Steady throughput (closed loop)" in text
    assert "1,120" in text


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_the_fleet_report_states_steady_throughput_for_closed_points_only(store, unique_id, fmt):
    run_id = f"fleet-steady-{unique_id}"
    for scenario in ("A", "B"):
        lm.store_run(store, run_id, f"{scenario}-{unique_id}", scenario)
    report = build_fleet_report(store, run_id)
    table = report.table("scenarios")
    named = [dict(zip([c.name for c in table.columns], row)) for row in table.rows]
    steady = {(r["scenario"], r["load"]): r["steady output tok/s"] for r in named}
    assert steady[("A", "concurrency 2")] == pytest.approx(4 * 7 / 0.2)   # two full rounds: no ramp, no drain
    assert steady[("B", "poisson 4 req/s")] is None
    text = html.unescape(RENDERERS[fmt].fleet(report))
    assert ("steady_output_tps" if fmt == "json" else "steady output tok/s") in text
    if fmt != "csv":
        assert "over each node's steady part" in text
