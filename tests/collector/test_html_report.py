"""The HTML report a reader prefers: a header naming what was measured, series named by what distinguishes
them, legends that never overlap whatever the number of series, TTFT and ITL distributions, and the cost
chart only where a price applies. Checked in Chromium: a probe script, added to a copy of the page (the
report itself has none), measures the laid-out legend entries (tests/collector/chromium.py)."""

from __future__ import annotations

import re

import pytest

from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.reports import svg
from siliconbench.collector.reports.html import series_names
from siliconbench.collector.rollups import Selection, Series
from siliconbench.collector.schema import RUNS
from siliconbench.core.plan import Plan
from tests.collector import rows
from tests.collector.chromium import probe

# Seven series (legends wrap past the first row), long names, one type without a price.
SCENARIOS = (("A", "p5.48xlarge"), ("B", "p4d.24xlarge"), ("C", "g6e.48xlarge"), ("D", "trn2.48xlarge"),
             ("E", "inf2.48xlarge"), ("F-with-a-long-scenario-label", "p5.48xlarge"), ("Z", "z9.unpriced"))

PROBE = """<script>
window.addEventListener('load', () => {
  const overlaps = [], outside = [];
  for (const figure of document.querySelectorAll('figure.chart')) {
    const box = figure.getBoundingClientRect();
    const items = [...figure.querySelectorAll('.legend li')].map(li => li.getBoundingClientRect());
    items.forEach((a, i) => {
      if (a.left < box.left - 1 || a.right > box.right + 1) outside.push(i);
      items.slice(i + 1).forEach((b, j) => {
        if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
          overlaps.push([i, i + 1 + j]);
      });
    });
  }
  const result = {
    legends: document.querySelectorAll('.legend li').length, overlaps, outside,
    rows: Math.max(...[...document.querySelectorAll('figure.chart ul.legend')].map(
      ul => new Set([...ul.children].map(li => Math.round(li.getBoundingClientRect().top))).size)),
    header: document.querySelector('#measured').innerText,
    distributions: [...document.querySelectorAll('svg[aria-label*="distribution"]')].length,
  };
  window.__result = result;
});
</script>"""


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    tag = tmp_path_factory.mktemp("html").name[-8:]
    run_ids = []
    for k, (scenario, itype) in enumerate(SCENARIOS):
        agent, run_id = f"node-{scenario}-{tag}", f"{tag}-run-{k}"
        store.insert("nodes", [rows.node(agent, itype)], f"n/{agent}")
        store.insert("runs", [RUNS.row(run_id=run_id, agent_id=agent, phase="start", time=rows.T0,
                                       target_url="http://vllm:8000", model="meta-llama/Llama-4-Scout-17B-16E",
                                       simulated=True, target_version="0.9.0", scenario=f"{scenario}{tag}",
                                       config_json=Plan().to_json(), outcome="", outcome_detail="",
                                       requests_sent=0, **rows.NO_TRACE_RUN)], f"r/{run_id}")
        store.insert("requests", [rows.request(run_id, agent, i, step=s, concurrency=c, repetition=r,
                                               start_s=i * 0.2, ttft_ms=80.0 + 10 * k + i + 30 * s,
                                               gaps_ms=(8.0 + k, 9.0 + k, 12.0 + k))
                                  for s, c in enumerate((1, 4)) for r in range(2) for i in range(8)], run_id)
        run_ids.append(run_id)
    first, agent = run_ids[0], f"node-A-{tag}"  # the first series sampled two GPUs through two steps
    store.insert("steps", [rows.step(first, agent, 0, 1, 0, 0.0, 5.0), rows.step(first, agent, 1, 4, 0, 5.0, 10.0)],
                 f"s/{first}")
    store.insert("device_samples", [rows.sample(first, agent, t, "nvml", device, metric, value)
                                    for t in range(11) for device in ("0", "1")
                                    for metric, value in (("gpu_util_pct", 40.0 + 5 * t), ("power_w", 300.0 + t))],
                 f"d/{first}")
    return build_report(store, Selection(runs=tuple(run_ids)), Options())


def series(run_id: str, scenario: str, instance_type: str, model: str = "m") -> Series:
    return Series(run_id=run_id, agent_id=f"node-{run_id}", scenario=scenario, started=rows.T0, target_url="u",
                  model=model, simulated=False, target_version="", instance_type=instance_type,
                  accelerator_kind="nvidia", accelerator_count=8, accelerator_model="H100", label=scenario)


def test_series_are_named_by_the_fewest_facets_that_tell_them_apart_never_by_run_id(report):
    names = series_names(report.series)
    assert len(set(names)) == len(names) and names[0].startswith("scenario A") and "run" not in names[0]
    two_types = [series("r1", "A", "p5.48xlarge"), series("r2", "A", "g6e.48xlarge")]
    assert series_names(two_types) == ["p5.48xlarge", "g6e.48xlarge"]
    alike = [series("r1", "A", "p5.48xlarge"), series("r2", "A", "p5.48xlarge")]
    assert len(set(series_names(alike))) == 2 and all("run" not in n for n in series_names(alike))


def test_the_page_names_what_was_measured_and_keeps_run_ids_in_tooltips(report):
    html = RENDERERS["html"].report(report)
    assert "<script" not in html and not re.search(r"(src|href)\s*=\s*[\"']?https?:", html)  # self-contained
    for expected in ("meta-llama/Llama-4-Scout-17B-16E", "http://vllm:8000 (SIMULATED)", "inf2.48xlarge",
                     "8× H100", "concurrency 1, 4, 8, 16, 32; 512 prompt tokens, 128 output tokens"):
        assert expected in html, expected
    assert f"(run {report.series[0].run_id}, node {report.series[0].agent_id})</title>" in html


def test_devices_over_time_are_charted_with_the_steps_shaded_where_they_were_sampled(report):
    html = RENDERERS["html"].report(report)
    name = series_names(report.series)[0]
    for title in (f"Accelerator utilisation over time — {name}", f"Node power over time — {name}"):
        chart = html[html.index(f'aria-label="{title}"'):]
        chart = chart[:chart.index("</svg>")]
        assert "<title>c=1</title>" in chart and "<title>c=4</title>" in chart and "<polyline" in chart
    # the other series sampled nothing: no empty frames for them
    assert html.count('aria-label="Accelerator utilisation over time') == html.count('aria-label="Node power over') == 1


def test_energy_per_output_token_is_charted_for_the_series_whose_gpus_report_power(report):
    html = RENDERERS["html"].report(report)
    chart = html[html.index('aria-label="Energy per output token vs concurrency"'):]
    assert "<polyline" in chart[:chart.index("</svg>")]


def test_the_cost_chart_covers_priced_series_and_a_sentence_names_the_missing_price(report):
    html = RENDERERS["html"].report(report)
    chart = html[html.index('aria-label="$ per 1M output tokens at peak"'):]
    chart = chart[:chart.index("</figure>")]
    assert chart.count("<rect x=") == len(SCENARIOS) - 1  # one bar per priced series (the frame is `<rect width`)
    assert "No cost for" in chart and "z9.unpriced" in chart and "prices import" in chart


def test_in_chromium_legends_never_overlap_and_the_header_and_distributions_are_shown(report, tmp_path):
    result = probe(RENDERERS["html"].report(report), PROBE, tmp_path)
    assert result["legends"] >= len(SCENARIOS) * 5  # every chart has a legend entry per series it shows
    assert result["rows"] >= 2  # seven long names wrap: the case that overlapped before
    assert result["overlaps"] == [] and result["outside"] == []
    for part in ("Model", "meta-llama/Llama-4-Scout-17B-16E", "Target", "Workload", "Instance types", "Run state"):
        assert part in result["header"], part
    assert result["distributions"] == 2  # TTFT and ITL, each a curve per series and concurrency
    assert result["errors"] == []


def test_a_zero_figure_is_drawn_and_printed_as_zero_and_a_missing_one_is_a_gap(store, unique_id):
    run_id, agent = f"zero-{unique_id}", f"z-{unique_id}"
    store.insert("runs", [rows.run(run_id, agent, scenario=f"Z{unique_id}")], f"r/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, i, step=0, concurrency=1, ttft_ms=0.0) for i in range(2)]
                 + [rows.request(run_id, agent, i, step=1, concurrency=2, error="timeout") for i in (2, 3)], run_id)
    report = build_report(store, Selection(runs=(run_id,)), Options(cost=False))

    page = RENDERERS["html"].report(report)
    ttft_chart = re.search(r'<svg [^>]*aria-label="TTFT vs concurrency[^"]*".*?</svg>', page, re.S).group(0)
    axis_y = f"{svg.H - svg.BOTTOM:.1f}"
    # concurrency 1 (TTFT 0 ms) is a point on the axis; concurrency 2 (no successful request) is left out
    assert re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', ttft_chart) == [axis_y]

    tables = {t.key: {row[1] if t.key == "scaling" else row[2]: dict(zip((c.name for c in t.columns), row))
                      for row in t.rows} for t in report.tables if t.key in ("ttft", "scaling")}
    assert tables["ttft"]["concurrency 1"]["TTFT p50"] == 0.0
    assert tables["scaling"]["concurrency 2"]["TTFT p50"] is None   # no successful request: no TTFT, not 0 ms
    markdown = RENDERERS["markdown"].report(report)
    assert f"| Z{unique_id} | – | concurrency 1 | 0.00 | 0.00 | 0.00 |" in markdown
