"""Table 4d: every consistency check at every sweep point, passed, warned, noted or could not apply, with
why (collector/check_outcomes.py); the tables' own check cells give the short form (check_outcomes.summary)."""

from __future__ import annotations

from collections.abc import Iterable

from siliconbench.collector.check_outcomes import Outcome, outcomes
from siliconbench.collector.reports.picks import load
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import TEXT, Declared, Table, cell
from siliconbench.collector.reports.tables import At, at_every_point

CHECKS = Declared("checks", "4d. Consistency checks at each sweep point", (
    cell("Scenario", TEXT, lambda r: r[0].series.label),
    cell("Load", TEXT, lambda r: load(r[0].point)),
    cell("check", TEXT, lambda r: r[1].check),
    cell("outcome", TEXT, lambda r: r[1].state),
    cell("why", TEXT, lambda r: r[1].why),
))
CHECKS_CAPTION = ("Each check on the point's figures (median of its repetitions): passed; warned (the finding, also "
                  "under the table of the figure); noted (worth knowing, not a fault); could not apply, and why (a "
                  "figure it needs is missing, or the step is too short for it). Little's law needs a step of at "
                  "least 3 mean E2Es; the server checks need vLLM's /metrics.")


def point_outcomes(a: At) -> list[Outcome]:
    return outcomes(a.checked())


def _rows(report: Report) -> Iterable[tuple[At, Outcome]]:
    return ((a, o) for a in at_every_point(report) if a.point is not None for o in point_outcomes(a))


def checks_table(report: Report) -> Table:
    return CHECKS.build(_rows(report), CHECKS_CAPTION)
