"""`check-slo`: each node of a run judged against the SLOs from its stored requests; exit 0 when every
node held, 10 when any broke one; in markdown, csv and json."""

from __future__ import annotations

import csv
import io
import json

import pytest

from siliconbench.collector.cli import app
from siliconbench.collector.slo_check import check_slo
from siliconbench.core.errors import ExitCode
from siliconbench.core.slo import parse_slos
from tests.collector import rows
from tests.programs import run_program

SLO = "ttft_p99_ms<=800,itl_p99_ms<=60"


def store_run(store, run_id: str, nodes: dict[str, list[list]], simulated: bool = True) -> None:
    """A finished run of `nodes` (agent id -> its request rows)."""
    for agent, requests in nodes.items():
        store.insert("runs", [rows.run(run_id, agent, simulated=simulated), rows.run(run_id, agent, phase="end",
                                                                                    simulated=simulated)], f"r/{agent}")
        if requests:
            store.insert("requests", requests, f"q/{agent}")


@pytest.fixture
def replayed(store, unique_id) -> str:
    """r1 answers every request in 100 ms, r2 in 900 ms; both stream 10 ms gaps (50 requests each)."""
    run_id = f"check-{unique_id}"
    store_run(store, run_id, {
        "r1-" + unique_id: [rows.request(run_id, "r1-" + unique_id, i, start_s=i * 0.1) for i in range(50)],
        "r2-" + unique_id: [rows.request(run_id, "r2-" + unique_id, i, ttft_ms=900.0) for i in range(50)]})
    return run_id


def cli(store, *args: str) -> tuple[int, list[str]]:
    return run_program(app, "check-slo", *args, "--store", store.location.dsn)


def test_a_node_over_a_limit_breaks_the_run_with_exit_10_naming_node_and_slo(store, replayed, unique_id):
    code, lines = cli(store, "--run", replayed, "--slo", SLO, "--format", "json")
    document = json.loads("\n".join(lines))
    assert code == ExitCode.SLO_BROKEN == 10
    assert document["held"] is False and document["simulated"] is True
    assert document["slo"] == {"ttft_p99_ms": 800.0, "itl_p99_ms": 60.0}
    assert [(n["agent_id"], n["requests"], n["held"], n["broken"]) for n in document["nodes"]] == [
        ("r1-" + unique_id, 50, True, []), ("r2-" + unique_id, 50, False, ["ttft_p99_ms"])]
    assert document["nodes"][1]["values"] == {"ttft_p99_ms": 900.0, "itl_p99_ms": 10.0}
    assert f"r2-{unique_id} (ttft_p99_ms)" in document["verdict"]


def test_csv_gives_one_row_per_node_and_slo(store, replayed, unique_id):
    code, lines = cli(store, "--run", replayed, "--slo", SLO, "--format", "csv")
    table = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert code == 10
    assert [(r["node"], r["slo"], r["value"], r["held"]) for r in table] == [
        ("r1-" + unique_id, "ttft_p99_ms", "100.0", "True"), ("r1-" + unique_id, "itl_p99_ms", "10.0", "True"),
        ("r2-" + unique_id, "ttft_p99_ms", "900.0", "False"), ("r2-" + unique_id, "itl_p99_ms", "10.0", "True")]


def test_markdown_shows_each_value_against_its_limit_and_says_simulated(store, replayed, unique_id):
    code, lines = cli(store, "--run", replayed, "--slo", SLO)
    assert code == 10
    assert lines[-1] == f"| r2-{unique_id} | 50 | 900 ms &gt; 800 ms | 10 ms &lt;= 60 ms | broken |"
    assert lines[-2] == f"| r1-{unique_id} | 50 | 100 ms &lt;= 800 ms | 10 ms &lt;= 60 ms | held |"
    assert any(line.startswith("SIMULATED target") for line in lines)


def test_every_node_within_its_limits_exits_0(store, replayed):
    code, lines = cli(store, "--run", replayed, "--slo", "ttft_p99_ms<=1000,itl_p99_ms<=60", "-f", "json")
    assert code == 0 and json.loads("\n".join(lines))["held"] is True


def test_each_metric_is_the_fleet_report_s_per_request_figure(store, unique_id):
    """ttft 100 ms, gaps 10/20/30 ms, 5 ms tail: E2E 165 ms, TPOT 65/3 ms; 1 of 5 requests failed."""
    run_id, agent = f"metrics-{unique_id}", f"m-{unique_id}"
    requests = [rows.request(run_id, agent, i, gaps_ms=(10, 20, 30), tail_ms=5) for i in range(4)]
    store_run(store, run_id, {agent: [*requests, rows.request(run_id, agent, 4, error="http_500")]})
    objectives = parse_slos("ttft_p50_ms<=1000,ttfa_p50_ms<=1000,itl_p99_ms<=1000,tpot_p50_ms<=1000,"
                            "e2e_p99_ms<=1000,error_rate<=0.1")
    [node] = check_slo(store, run_id, objectives).nodes
    assert node.values == pytest.approx({"ttft_p50_ms": 100.0, "ttfa_p50_ms": 100.0, "itl_p99_ms": 30.0,
                                         "tpot_p50_ms": 65 / 3, "e2e_p99_ms": 165.0, "error_rate": 0.2})
    assert node.broken == ("error_rate",) and (node.requests, node.errors) == (5, 1)


def test_a_node_without_a_successful_request_did_not_hold(store, unique_id):
    run_id, failing, silent = f"empty-{unique_id}", f"f-{unique_id}", f"s-{unique_id}"
    store_run(store, run_id, {failing: [rows.request(run_id, failing, 0, error="timeout")], silent: []},
              simulated=False)
    check = check_slo(store, run_id, parse_slos(SLO))
    assert [(n.agent_id, n.requests, n.values["ttft_p99_ms"], n.broken) for n in check.nodes] == [
        (failing, 1, None, ("ttft_p99_ms", "itl_p99_ms")), (silent, 0, None, ("ttft_p99_ms", "itl_p99_ms"))]
    code, lines = cli(store, "--run", run_id, "--slo", SLO)
    assert code == 10 and f"| {silent} | 0 | no sample (limit 800 ms) | no sample (limit 60 ms) | broken |" in lines
    assert not any("SIMULATED" in line for line in lines)


def test_an_unknown_run_is_one_line_and_exit_2(store):
    code, lines = cli(store, "--run", "no-such-run", "--slo", SLO)
    assert code == 2 and len(lines) == 1 and "no run 'no-such-run'" in lines[0]


def test_a_bad_slo_or_format_is_one_line_and_exit_2(store, replayed):
    code, lines = cli(store, "--run", replayed, "--slo", "ttft_p99<=800")
    assert code == 2 and len(lines) == 1 and "--slo: unknown SLO 'ttft_p99'" in lines[0]
    code, lines = cli(store, "--run", replayed, "--slo", SLO, "--format", "html")
    assert code == 2 and len(lines) == 1 and "--format 'html' is not one of markdown, csv, json" in lines[0]


def test_a_run_still_going_is_judged_on_what_it_stored_and_says_so(store, unique_id):
    run_id, agent = f"going-{unique_id}", f"g-{unique_id}"
    store.insert("runs", [rows.run(run_id, agent)], f"r/{agent}")
    store.insert("requests", [rows.request(run_id, agent, i) for i in range(3)], f"q/{agent}")
    code, lines = cli(store, "--run", run_id, "--slo", SLO)
    assert code == 0 and "The run is running (1 of 1 nodes have not sent the run's end): the verdict covers only " \
                         "what it stored so far." in lines
