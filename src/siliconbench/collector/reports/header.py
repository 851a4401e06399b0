"""What was measured, before any figure (the reader's first question), for the single-run and the fleet
report alike: model, target and version (SIMULATED said as such), nodes, instance types, accelerators,
workload and run state."""

from __future__ import annotations

from collections.abc import Iterable

from siliconbench.collector.reports.report import Report


def _distinct(values: Iterable[object]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v)) or "unknown"


def measured(report: Report) -> list[tuple[str, str]]:
    """(what, value) rows: Model, Target, Nodes, Instance types, Accelerators, Workload, Run state, Step
    results (kept or computed now), and SIMULATED where any series ran against the simulator."""
    series = report.series
    targets = _distinct(f"{s.target_url} (" + ("SIMULATED" if s.simulated else f"vLLM {s.target_version or '?'}") + ")"
                        for s in series)
    rows = [("Model", _distinct(s.model for s in series)), ("Target", targets),
            ("Nodes", _distinct(s.agent_id for s in series)),
            ("Instance types", _distinct(s.instance_type or "unknown" for s in series)),
            ("Accelerators", _distinct(s.accelerators for s in series)),
            ("Workload", _distinct(report.spread.workloads.get(s.run_id, "unknown") for s in series)),
            ("Run state", _distinct(f"{s.run_id}: {report.unfinished.get(s.run_id, 'finished')}" for s in series))]
    if report.figures.steps:
        rows.append(("Step results", step_results(report)))
    if report.simulated:
        rows.append(("SIMULATED", "yes: " + ", ".join(report.simulated)))
    return rows


SHOWN_STEPS = 8  # the steps computed now that the row names, the rest counted


def step_results(report: Report) -> str:
    """Whether each step's figures were read from its kept results (collector/kept.py) or computed from its
    rows for this report (not kept yet, or rows came after it was kept), naming the computed ones."""
    steps = report.figures.steps
    computed = [s for s in steps if not s.kept]
    if not computed:
        return f"kept: all {len(steps)} steps read from their kept results"
    names = ", ".join(f"{s.run_id}/{s.agent_id} step {s.step}" for s in computed[:SHOWN_STEPS])
    more = f" and {len(computed) - SHOWN_STEPS} more" if len(computed) > SHOWN_STEPS else ""
    return (f"{len(steps) - len(computed)} of {len(steps)} steps read from their kept results; "
            f"computed from their rows now (not kept yet): {names}{more}")


def single_run_command(run_id: str, fmt: str) -> str:
    """The command that renders a fleet run as one run: every table per node."""
    return f"siliconbench-collector report --run {run_id} --format {fmt}"
