"""Warnings a reader can take in: each once, the same one at several points folded into one line; flagged
rows as tall as the others, and tables that fit the page (measured in headless Chromium)."""

from __future__ import annotations

import html

import pytest

from siliconbench.collector.checks import Finding
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.reports.folded import folded
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm
from tests.collector.chromium import probe

SATURATION = "event-loop lag p99 12.0 ms"

PROBE = """<script>
window.addEventListener('load', () => {
  const tables = {};
  for (const table of document.querySelectorAll('table[id^="table-"]')) {
    const rows = [...table.querySelectorAll('tr')].slice(1);
    const height = r => r.getBoundingClientRect().height;
    const flagged = rows.filter(r => r.innerText.includes('client-limited')).map(height);
    const ordinary = rows.filter(r => !r.innerText.includes('client-limited')).map(height);
    tables[table.id] = {flagged, ordinary};
  }
  window.__result = {tables, page: document.documentElement.scrollWidth, window: window.innerWidth};
});
</script>"""


def finding(point: str, message: str = "2 of 2 step(s) flagged") -> Finding:
    return Finding("client saturated", "A", point, "client saturated", message)


def test_the_same_warning_at_several_points_is_one_line_naming_them():
    lines = folded([finding(f"concurrency {c}") for c in (1, 2, 4)] + [finding("concurrency 1")])
    assert lines == ["⚠ A at 3 points (concurrency 1, concurrency 2, concurrency 4) — client saturated: "
                     "2 of 2 step(s) flagged"]
    many = folded([finding(f"concurrency {c}") for c in range(1, 44)])
    assert len(many) == 1 and many[0].startswith("⚠ A at 43 points (concurrency 1, ") and "… and 37 more)" in many[0]
    assert len(folded([finding("concurrency 1"), finding("concurrency 2", "1 of 2 step(s) flagged")])) == 2


@pytest.fixture(scope="module")
def report(store):
    lm.store_run(store, "folded-run", "folded-agent", "F", server_ttft_s=0.035)
    return build_report(store, Selection(runs=("folded-run",)), Options(cost=False))


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_each_flag_reads_once_and_every_table_still_marks_its_row(report, fmt):
    text = RENDERERS[fmt].report(report)
    text = html.unescape(text) if fmt == "html" else text
    assert text.count(SATURATION) == 1  # once per table and appendix before: 8 times
    assert text.count("⚠ client-limited") >= 3  # the marks beside the figures stay
    assert text.count("ℹ node busy") >= 2  # a note, not a warning: the figures stand


def test_in_chromium_flagged_rows_are_as_tall_as_the_others_and_tables_fit_the_page(report, tmp_path):
    result = probe(RENDERERS["html"].report(report), PROBE, tmp_path, width=1360)
    assert result["errors"] == []
    assert result["page"] <= result["window"]
    with_flags = {k: t for k, t in result["tables"].items() if t["flagged"] and t["ordinary"]}
    assert {"table-steps", "table-scaling", "table-load"} <= set(with_flags)
    for key, t in with_flags.items():
        assert max(t["flagged"]) <= max(t["ordinary"]) + 1, (key, t)
