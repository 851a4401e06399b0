"""What was measured, before any figure (the reader's first question), for the single-run and the fleet
report alike: model, target and version (SIMULATED said as such), nodes, instance types, accelerators,
workload and run state."""

from __future__ import annotations

from collections.abc import Iterable

from siliconbench.collector.reports.report import Report


def _distinct(values: Iterable[object]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v)) or "unknown"


def measured(report: Report) -> list[tuple[str, str]]:
    """(what, value) rows: Model, Target, Nodes, Instance types, Accelerators, Workload, Run state, and
    SIMULATED where any series ran against the simulator."""
    series = report.series
    targets = _distinct(f"{s.target_url} (" + ("SIMULATED" if s.simulated else f"vLLM {s.target_version or '?'}") + ")"
                        for s in series)
    rows = [("Model", _distinct(s.model for s in series)), ("Target", targets),
            ("Nodes", _distinct(s.agent_id for s in series)),
            ("Instance types", _distinct(s.instance_type or "unknown" for s in series)),
            ("Accelerators", _distinct(s.accelerators for s in series)),
            ("Workload", _distinct(report.spread.workloads.get(s.run_id, "unknown") for s in series)),
            ("Run state", _distinct(f"{s.run_id}: {report.unfinished.get(s.run_id, 'finished')}" for s in series))]
    if report.simulated:
        rows.append(("SIMULATED", "yes: " + ", ".join(report.simulated)))
    return rows


def single_run_command(run_id: str, fmt: str) -> str:
    """The command that renders a fleet run as one run: every table per node."""
    return f"siliconbench-collector report --run {run_id} --format {fmt}"
