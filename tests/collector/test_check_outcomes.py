"""Every check's outcome at every sweep point, in every format: passed, warned, noted, or could not apply
and why; a step too short for Little's law reads so and costs the report nothing."""

from __future__ import annotations

import csv
import io
import json

from siliconbench.collector.check_outcomes import NAMES, column, outcomes
from siliconbench.collector.checks import PointFigures, check_point
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm

# Concurrency 8, 1 s per request, measured at half the rate Little's law predicts over a step of 1.5 s.
SHORT = PointFigures(subject="A", concurrency=8, e2e_mean_ms=1000.0, rps=4.0, wall_s=1.5, requests=6, errors=0)


def by_check(p: PointFigures) -> dict[str, str]:
    return {o.check: o.text() for o in outcomes(p)}


def test_littles_law_on_a_step_too_short_could_not_apply_and_warns_nothing():
    assert by_check(SHORT)["Little's law"].startswith(
        "could not apply: step shorter than 3 mean E2Es (1.50 s against 3 × 1.000 s)")
    assert not [f for f in check_point(SHORT) if f.check == "Little's law"]


def test_littles_law_on_a_long_enough_step_still_warns():
    long_enough = PointFigures(subject="A", concurrency=8, e2e_mean_ms=1000.0, rps=4.0, wall_s=30.0, requests=120)
    assert by_check(long_enough)["Little's law"].startswith("warned: measured 4.00 req/s vs concurrency ÷ mean E2E")


def test_each_check_reads_passed_or_could_not_apply_with_why():
    found = by_check(PointFigures(subject="A", concurrency=1, e2e_mean_ms=100.0, rps=10.0, wall_s=10.0,
                                  tpot_mean_ms=10.0, itl_token_mean_ms=10.0, itl_chunk_p50_ms=10.0,
                                  itl_token_p50_ms=10.0, output_tps=90.0, mean_in_flight=1.0, requests=100, errors=0))
    assert list(found) == list(NAMES)
    assert found["Little's law"] == found["TPOT vs ITL"] == found["errors"] == found["steady state"] == "passed"
    assert found["tok/s at concurrency 1"] == "passed"
    assert found["offered vs sent"] == "could not apply: applies to open-loop (rate) steps only"
    assert found["client vs server TTFT"] == "could not apply: no server TTFT"


def test_every_format_has_the_checks_of_each_point(store, unique_id):
    run_id = f"chk-{unique_id}"
    lm.store_run(store, run_id, f"chk-{unique_id}", "K", server_ttft_s=0.035)
    report = build_report(store, Selection(runs=(run_id,)), Options(cost=False))
    # concurrency 2: two rounds of 100 ms, 0.2 s, shorter than 3 mean E2Es
    rows = {r["load"]: r for r in csv.DictReader(io.StringIO(RENDERERS["csv"].report(report)))}
    assert rows["concurrency 2"][column("Little's law")].startswith("could not apply: step shorter than 3 mean E2Es")
    assert rows["concurrency 2"][column("client vs server TTFT")].startswith("passed: client mean TTFT 40.0 ms")
    assert rows["poisson 4 req/s"][column("steady state")] == "could not apply: applies to closed-loop steps only"
    assert not [f for f in report.findings if f.check == "Little's law"]
    table = json.loads(RENDERERS["json"].report(report))["tables"]
    checks = next(t for t in table if t["key"] == "checks")
    assert len(checks["rows"]) == len(lm.LABELS) * len(NAMES)
    assert {row[3] for row in checks["rows"]} >= {"passed", "could not apply"}
    for fmt in ("markdown", "html"):
        assert "4d. Consistency checks at each sweep point" in RENDERERS[fmt].report(report), fmt
    ttft = report.table("ttft")
    assert ttft.rows[0][-1].startswith("✔ ") and "passed" in ttft.rows[0][-1]  # not a bare '–'
