"""The report as data: its series and their figures, the tables built from them, the findings of the
checks and the steps flagged, where each run stands, and whether the whole may be published as is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from siliconbench.collector.answers import Answers
from siliconbench.collector.checks import Finding
from siliconbench.collector.figures import Figures
from siliconbench.collector.lifecycle import Lifecycle
from siliconbench.collector.reports.cost import Cost
from siliconbench.collector.reports.spread import Spread
from siliconbench.collector.reports.table import Table
from siliconbench.collector.rollups import Selection, Series, Slo
from siliconbench.collector.sessions import Sessions
from siliconbench.collector.trace_figures import TraceStep


@dataclass(slots=True)
class Report:
    title: str
    generated_at: dt.datetime
    store: str
    selection: Selection
    slo: Slo
    baseline: str
    region: str
    price_kind: str
    series: list[Series]
    figures: Figures
    tables: list[Table]
    findings: list[Finding]
    costs: list[Cost]
    runs: dict[str, Lifecycle] = field(default_factory=dict)   # run id -> where it stands (collector/lifecycle.py)
    flags: list[Finding] = field(default_factory=list)        # steps the agent flagged, or cut short
    mixed: dict[str, list[str]] = field(default_factory=dict)  # label -> how its workload differs from the baseline's
    allow_mixed: bool = False                                  # compute 'vs baseline' across workloads anyway
    spread: Spread = field(default_factory=Spread)             # distributions and workloads, for the HTML charts
    answers: Answers = field(default_factory=Answers)          # by kind and served model (collector/answers.py)
    sessions: Sessions = field(default_factory=Sessions)       # multi-turn sessions (collector/sessions.py)
    boundaries: dict[tuple[str, str], str] = field(default_factory=dict)  # series key -> its search's answer
    traces: list[TraceStep] = field(default_factory=list)      # trace replays' steps (collector/trace_figures.py)

    def compared(self, s: Series) -> bool:
        """Whether `s` gets a 'vs baseline' figure: the same workload as the baseline, or asked for."""
        return self.allow_mixed or s.label not in self.mixed

    @property
    def baseline_series(self) -> Series:
        return next(s for s in self.series if s.label == self.baseline)

    @property
    def unfinished(self) -> dict[str, str]:
        """run id -> state, for the runs that did not run to their end with everything stored."""
        return {run_id: life.state for run_id, life in self.runs.items() if not life.finished}

    @property
    def simulated(self) -> list[str]:
        return [s.label for s in self.series if s.simulated]

    @property
    def publishable(self) -> bool:
        """As is: every run finished, no step client-limited or cut short (a node-busy step is a note), one
        workload, no warning."""
        return not (self.unfinished or self.mixed
                    or any(f.severity == "warning" for f in (*self.flags, *self.findings)))

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


@dataclass(frozen=True, slots=True)
class Options:
    slo: Slo = Slo()
    baseline: str | None = None
    region: str = "us-east-1"
    price_kind: str = "on_demand"
    cost: bool = True
    allow_mixed_workloads: bool = False
