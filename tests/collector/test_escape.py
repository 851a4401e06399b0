"""Every label an agent or operator supplies is shown literally in every report format: it can
neither add Markdown structure, nor run as HTML, nor start a spreadsheet formula, nor break JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.reports.escape import csv_cell, html, json_text, markdown
from siliconbench.collector.rollups import Selection
from tests.collector import rows

EVIL = "A|x\n# injected heading\r\n<script>alert(1)</script> *bold* [link](http://e.vil)"


def test_markdown_is_one_literal_line():
    text = markdown(EVIL)
    assert "\n" not in text and "\r" not in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "|" not in text.replace("\\|", "")
    assert "\\*bold\\*" in text and "\\[link\\]" in text


def test_html_escapes_markup_and_quotes():
    assert html('<b a="1">\'&') == "&lt;b a=&quot;1&quot;&gt;&#x27;&amp;"


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1+cmd", "@SUM(A1)", "\tx", "\rx"])
def test_csv_text_that_would_start_a_formula_is_neutralised(cell):
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("value", ["A", "p5.48xlarge", -1.5, 0, None])
def test_csv_other_values_are_left_alone(value):
    assert csv_cell(value) == value


def test_json_round_trips_and_holds_no_markup():
    text = json_text({"label": EVIL + "\u2028&"})
    assert json.loads(text) == {"label": EVIL + "\u2028&"}
    assert not any(c in text for c in "<>&\u2028")


@pytest.fixture
def evil_run(store, unique_id) -> str:
    agent, run_id = f"=agent|{unique_id}\n# x", f"run-{unique_id}"
    store.insert("nodes", [rows.node(agent, "p5.48xlarge")], f"n/{run_id}")
    store.insert("runs", [rows.run(run_id, agent, scenario=f"=HYPERLINK(1)|{unique_id}\n<script>x</script>")],
                 f"r/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, i, start_s=i * 0.2) for i in range(4)], run_id)
    return run_id


def render(store, run_id: str, fmt: str) -> str:
    return RENDERERS[fmt].report(build_report(store, Selection(runs=(run_id,)), Options()))


def test_markdown_report_keeps_its_structure_with_evil_labels(store, evil_run):
    text = render(store, evil_run, "markdown")
    assert "<script>" not in text and "HYPERLINK" in text
    assert [line for line in text.splitlines() if line.startswith("# ")] == [text.splitlines()[0]]
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line.replace("\\|", "").count("|"))  # a table row's cell borders
        elif current:
            tables.append(current)
            current = []
    assert tables and all(len(set(borders)) == 1 for borders in tables), tables


def test_html_report_runs_no_label(store, evil_run):
    assert "<script>" not in render(store, evil_run, "html")


def test_csv_report_has_no_formula_cell(store, evil_run):
    cells = [c for row in csv.reader(io.StringIO(render(store, evil_run, "csv"))) for c in row]
    assert any("HYPERLINK" in c for c in cells)
    assert not any(c.startswith(("=", "+", "@")) for c in cells)


def test_json_report_keeps_the_label_exactly(store, evil_run):
    doc = json.loads(render(store, evil_run, "json"))
    assert any(s["scenario"].startswith("=HYPERLINK(1)|") and "<script>" in s["scenario"] for s in doc["series"])
