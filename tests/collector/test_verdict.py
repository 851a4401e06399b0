"""The report's headline names the figures a check put at risk, not a count of warnings: a reader sees which
numbers not to publish; notes put nothing at risk."""

from __future__ import annotations

from siliconbench.collector.checks import Finding
from siliconbench.collector.reports.verdict import at_risk


def warning(check: str, figure: str, point: str | None, subject: str = "A") -> Finding:
    return Finding(check, subject, point, figure, "the figures disagree")


def test_each_figure_at_risk_is_named_with_its_series_points_and_check():
    findings = [warning("ttft vs server", "TTFT", "concurrency 8"), warning("ttft vs server", "TTFT", "concurrency 16"),
                warning("littles law", "THROUGHPUT", None, subject="B"),
                Finding("littles law", "A", "concurrency 1", "THROUGHPUT", "could not apply", severity="note")]
    assert at_risk(findings) == ["TTFT of A at concurrency 8, concurrency 16 (ttft vs server: warned)",
                                 "throughput of B at every point (littles law: warned)"]


def test_many_points_are_folded_after_the_first_three():
    findings = [warning("scaling", "SCALING", f"concurrency {c}") for c in (1, 2, 4, 8, 16)]
    assert at_risk(findings) == ["scaling of A at concurrency 1, concurrency 2, concurrency 4 and 2 more "
                                 "(scaling: warned)"]


def test_notes_alone_put_nothing_at_risk():
    assert at_risk([Finding("node busy", "A", "concurrency 1", "THROUGHPUT", "the figures stand", "note")]) == []
