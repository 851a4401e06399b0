"""Warnings as a reader takes them in: each once, and the same warning at several points folded into one
line that names them ('⚠ A — client saturated at 3 points (c=8, c=16, c=32): ...'). The step flags are
listed once for the whole report (`flag_lines`); each table lists only the findings on its own figures,
its rows carry the short marks."""

from __future__ import annotations

from siliconbench.collector.checks import Finding
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import Table

NAMED_POINTS = 6  # past this many points a folded line names the first ones and counts the rest


def folded(findings: list[Finding]) -> list[str]:
    """One line per distinct warning (subject, check, message), naming every point it was found at."""
    groups: dict[tuple[str, str, str, str], list[str | None]] = {}
    for f in findings:
        points = groups.setdefault((f.severity, f.subject, f.check, f.message), [])
        if f.point not in points:
            points.append(f.point)
    out = []
    for (severity, subject, check, message), points in groups.items():
        mark = "⚠" if severity == "warning" else "ℹ"
        named = [p for p in points if p is not None]
        if len(named) <= 1:
            at = f" at {named[0]}" if named else ""
        else:
            shown = ", ".join(named[:NAMED_POINTS])
            more = f", … and {len(named) - NAMED_POINTS} more" if len(named) > NAMED_POINTS else ""
            at = f" at {len(named)} points ({shown}{more})"
        out.append(f"{mark} {subject}{at} — {check}: {message}")
    return out


def table_lines(table: Table) -> list[str]:
    """The findings on the table's own figures, folded; the step flags are in `flag_lines`."""
    return folded([f for f in table.findings if f.figure == table.key])


def flag_lines(report: Report) -> list[str]:
    """Every step flag of the report, once, folded."""
    return folded(report.flags)
