"""An open-loop run's HTML page: latency percentiles and the achieved rate against the offered rate (with the
spread a Poisson schedule reaches by chance, and a word on the rate noise of short steps), a CDF per metric
with a curve per sweep point on one axis (rates never pooled, never 'at concurrency 0'), round axis ticks,
values in the tooltips, and the key results first. Looked at in headless Chromium."""

from __future__ import annotations

import html
import re

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.reports.svg import ticks
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm
from tests.collector.chromium import probe

PROBE = """<script>
window.addEventListener('load', () => {
  const charts = {};
  for (const svg of document.querySelectorAll('figure.chart svg')) {
    const box = svg.getBoundingClientRect();
    charts[svg.getAttribute('aria-label')] = {
      width: box.width, height: box.height,
      lines: [...svg.querySelectorAll('polyline')].map(l => l.getAttribute('points').trim().split(/\\s+/).length),
      marks: svg.querySelectorAll('circle').length, bands: svg.querySelectorAll('polygon').length,
    };
  }
  window.__result = {charts, key: document.querySelector('#key-results').innerText};
});
</script>"""


@pytest.fixture(scope="module")
def page(store) -> str:
    lm.store_run(store, "open-html-run", "open-html-agent", "O")
    return RENDERERS["html"].report(build_report(store, Selection(runs=("open-html-run",)), Options(cost=False)))


def chart(page: str, title: str) -> str:
    found = re.search(rf'<svg [^>]*aria-label="{re.escape(title)}".*?</svg>', page, re.S)
    assert found, title
    return found.group(0)


def test_latency_and_the_achieved_rate_are_charted_against_the_offered_rate(page):
    for title in ("TTFT vs offered rate: p50, p90–p99 band", "E2E vs offered rate: p50, p90–p99 band",
                  "Achieved vs offered rate"):
        svg = chart(page, title)
        assert "offered rate (req/s)" in svg and ">concurrency<" not in svg
    achieved = chart(page, "Achieved vs offered rate")
    assert "<polygon" in achieved  # offered ± 1.96·√n ÷ duration around each Poisson point
    assert ("A Poisson step's rate is known to about ±35 % (1 s.d., ±69 % at 95 %) with 8 arrivals"
            in html.unescape(page))


def test_distributions_are_one_chart_per_metric_with_a_curve_per_point_never_pooled(page):
    assert "at concurrency 0" not in page
    ttft = chart(page, "TTFT distribution per sweep point (CDF)")
    assert len(re.findall(r"<polyline", ttft)) == len(lm.LABELS)
    legend = re.search(r'aria-label="TTFT distribution per sweep point \(CDF\)".*?<ul class="legend">(.*?)</ul>',
                       page, re.S).group(1)
    for label in lm.LABELS:
        assert f">{label}<" in legend


def test_axis_ticks_are_round_and_tooltips_carry_the_values(page):
    assert ticks(18.8) == [0, 5, 10, 15, 20] and ticks(6.25) == [0, 2, 4, 6, 8] and ticks(110.5)[1] == 20
    labels = re.findall(r'<text x="[\d.]+" y="[\d.]+" font-size="10" text-anchor="(?:end|middle)">([\d.,]+)</text>',
                        page)
    significant = [len(v.replace(",", "").replace(".", "").strip("0")) for v in labels]
    assert labels and max(significant) <= 2, [v for v, n in zip(labels, significant) if n > 2]
    assert re.search(r"<circle [^>]*><title>[^<]*: offered rate \(req/s\) 4, ms [\d.]+</title>", page)


def test_the_key_results_come_first(page):
    key = page.index('id="key-results"')
    assert key < page.index('id="measured"') and key < page.index("<h2>Charts</h2>")
    assert re.search(r"peak [\d.,]+ output tok/s at [^,]+, TTFT p99 [\d.,]+ ms there", page)


def test_in_chromium_every_chart_is_drawn_with_points_and_the_page_has_no_errors(page, tmp_path):
    result = probe(page, PROBE, tmp_path)
    assert result["errors"] == []
    charts = result["charts"]
    for title in ("TTFT vs offered rate: p50, p90–p99 band", "Achieved vs offered rate",
                  "TTFT distribution per sweep point (CDF)", "ITL per token distribution per sweep point (CDF)"):
        assert charts[title]["width"] > 300 and charts[title]["lines"], title
        assert min(charts[title]["lines"]) >= 2 and charts[title]["marks"] > 0, title
    assert charts["Achieved vs offered rate"]["bands"] >= 1
    assert "peak" in result["key"] and "TTFT p99" in result["key"]
