"""What heads the report in every format: runs not finished, where each run stands, whether the figures
may be published as they are (and if not, why), and workloads that differ from the baseline's."""

from __future__ import annotations

from siliconbench.collector.checks import Finding
from siliconbench.collector.reports.findings import PARTIAL
from siliconbench.collector.reports.report import Report
from siliconbench.core.verdict import CLIENT_LIMITED


def verdict(report: Report) -> str:
    """The summary's one line: publishable as is, or why not."""
    if report.publishable:
        return "Publishable as is: every run finished, no step was client-limited or cut short and every check passed."
    why = []
    if report.unfinished:
        why.append(f"{len(report.unfinished)} run(s) not finished")
    why += [f"throughput and latency of {f.subject} at {f.point}: {CLIENT_LIMITED}"
            for f in report.flags if f.check == CLIENT_LIMITED]
    partial = [f for f in report.flags if f.check == PARTIAL]
    if partial:
        why.append(f"{len(partial)} sweep point(s) with partial steps")
    if report.mixed:
        why.append(f"{len(report.mixed)} series with a workload other than the baseline's")
    why += at_risk(report.findings)
    return "NOT publishable as is: " + "; ".join(why) + " (each is marked beside its figures below)."


_FIGURE_WORDS = {"THROUGHPUT": "throughput", "SCALING": "scaling", "COST": "cost"}
_POINTS_NAMED = 3


def at_risk(findings: list[Finding]) -> list[str]:
    """The figures a check warned about, one entry per figure, series and check, naming the points:
    'TTFT of A at concurrency 8, concurrency 16 (ttft vs server: warned)'. Notes put no figure at risk."""
    points: dict[tuple[str, str, str], list[str]] = {}
    for f in findings:
        if f.severity == "warning":
            points.setdefault((_FIGURE_WORDS.get(f.figure, f.figure), f.subject, f.check), []).append(
                f.point or "every point")
    out = []
    for (figure, subject, check), at in points.items():
        named = ", ".join(at[:_POINTS_NAMED]) + (f" and {len(at) - _POINTS_NAMED} more" if len(at) > _POINTS_NAMED else "")
        out.append(f"{figure} of {subject} at {named} ({check}: warned)")
    return out


def banners(report: Report) -> list[str]:
    """Most important first: unfinished runs, the runs' states, the verdict, mixed workloads."""
    out = [unfinished_banner(report)] if report.unfinished else []
    out.append("Run state: " + "; ".join(f"{run_id} {life.describe()}" for run_id, life in report.runs.items()))
    out.append(verdict(report))
    if report.mixed:
        out.append(mixed_banner(report))
    return out


def mixed_banner(report: Report) -> str:
    each = "; ".join(f"{label}: {', '.join(diff)}" for label, diff in report.mixed.items())
    if report.allow_mixed:
        return (f"MIXED workloads, compared anyway (--allow-mixed-workloads): {each} against baseline "
                f"{report.baseline}. 'vs baseline' then mixes hardware and workload.")
    return (f"MIXED workloads: {each} against baseline {report.baseline}. 'vs baseline' is left out for these "
            "series, since it would compare workloads, not hardware; pass --allow-mixed-workloads to compute it anyway.")


def unfinished_banner(report: Report) -> str:
    runs = ", ".join(f"{run_id} ({state})" for run_id, state in report.unfinished.items())
    return f"UNFINISHED run — {runs}: the figures cover only what was stored so far."
