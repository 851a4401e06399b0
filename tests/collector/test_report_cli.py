"""The report CLI: bad input is one line and exit code 2; every format renders; export streams raw rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from siliconbench.collector.export import export_rows
from siliconbench.collector.options import REPORT_FLAGS, report_options, serve_config
from siliconbench.collector.reporting import render_report
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection
from siliconbench.core.errors import ConfigError
from tests.collector import rows
from tests.servers import make_store


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> str:
    return make_store(f"chdb://{tmp_path_factory.mktemp('cli')}/data")


@pytest.mark.parametrize("args, message", [
    (["report", "--run", "nope"], "no run matches 'nope'"),
    (["report", "--slo", "ttft=5"], "--slo 'ttft=5'"),
    (["report", "--format", "pdf"], "--format 'pdf' is not one of markdown, csv, json, html"),
    (["compare", "--run", "x"], "compare needs at least two"),
    (["export", "--table", "secrets"], "--table 'secrets' is not one of"),
    (["export", "--format", "parquet"], "give --output FILE"),
])
def test_bad_input_is_one_clear_line_and_exit_code_2(empty_store, args, message):
    result = cli(*args, "--store", empty_store)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_runs_and_runs_list_both_list_runs(empty_store):
    assert cli("runs", "--store", empty_store).returncode == 0
    assert cli("runs", "list", "--store", empty_store).returncode == 0


@pytest.fixture
def two_scenarios(store, unique_id):
    for name, itype in (("A", "p5.48xlarge"), ("E", "inf2.48xlarge")):
        agent, run_id = f"{name}-{unique_id}", f"{unique_id}-{name}"
        store.insert("nodes", [rows.node(agent, itype)], f"n/{agent}")
        store.insert("runs", [rows.run(run_id, agent, scenario=f"{name}{unique_id}", simulated=True)], f"r/{run_id}")
        store.insert("requests", [rows.request(run_id, agent, i, step=s, concurrency=c, start_s=i * 0.2)
                                  for s, c in enumerate((1, 4)) for i in range(4)], run_id)
    return [f"{unique_id}-A", f"{unique_id}-E"]


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_every_format_renders_and_says_simulated(store, two_scenarios, fmt):
    text = RENDERERS[fmt].report(build_report(store, Selection(runs=tuple(two_scenarios)), Options()))
    assert text
    if fmt == "json":
        doc = json.loads(text)
        assert len(doc["simulated"]) == 2 and {t["key"] for t in doc["tables"]} >= {"ttft", "itl", "throughput",
                                                                                     "scaling", "cost"}
    elif fmt == "csv":
        assert len(text.strip().splitlines()) == 1 + 2 * 2  # header + two series × two concurrencies
    else:
        assert "SIMULATED" in text


def test_export_writes_csv_and_parquet_of_the_selected_runs(store, two_scenarios, tmp_path):
    export_rows(store, "requests", "parquet", tmp_path / "r.parquet", runs=tuple(two_scenarios))
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == 16 and set(table.column("run_id").to_pylist()) == set(two_scenarios)
    export_rows(store, "requests", "csv", tmp_path / "r.csv", runs=(two_scenarios[0],))
    assert len((tmp_path / "r.csv").read_text().strip().splitlines()) == 1 + 8


def test_a_run_without_its_end_event_is_reported_unfinished(store, two_scenarios, unique_id):
    finished, unfinished = two_scenarios
    end = rows.run(finished, f"A-{unique_id}", phase="end")
    store.insert("runs", [end], f"end/{finished}")
    report = build_report(store, Selection(runs=tuple(two_scenarios)), Options())
    assert report.unfinished == {unfinished: "running"}
    markdown = RENDERERS["markdown"].report(report)
    assert f"UNFINISHED run — {unfinished} (running)" in markdown and finished not in markdown.split("\n")[2]
    assert json.loads(RENDERERS["json"].report(report))["unfinished"] == {unfinished: "running"}



def test_report_and_compare_render_the_same_options_the_same_way(store, two_scenarios):
    """The commands call render_report with the options their shared flags build; so does this test."""
    options = report_options(**{flag.name: flag.default for flag in REPORT_FLAGS} |
                             {"run": two_scenarios, "fmt": "json", "store": store.location.shown})
    assert (options.runs, options.fmt, options.cost) == (tuple(two_scenarios), "json", True)
    expected = json.loads(RENDERERS["json"].report(build_report(store, Selection(runs=tuple(two_scenarios)), Options())))
    rendered = json.loads(render_report(options))
    assert rendered.pop("generated_at") and expected.pop("generated_at")
    assert rendered == expected


def test_serve_names_every_bad_flag_at_once():
    with pytest.raises(ConfigError) as caught:
        serve_config(store_threads=0, max_stream_age_s=-1.0)
    assert str(caught.value) == ("options: 2 problems: --max-stream-age-s: must be greater than or equal to 0, "
                                 "got -1.0; --store-threads: must be greater than or equal to 1, got 0")
    with pytest.raises(ConfigError, match="--tls-client-ca \\(mTLS\\) needs --tls-cert"):
        serve_config(tls_client_ca=Path("ca.pem"))
