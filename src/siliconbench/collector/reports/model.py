"""The report, built: the workload of each run, the reference report's five tables (TTFT, ITL,
throughput, concurrency scaling, $/1M tokens), latency versus offered load (rate steps), the server's
figures beside the client's, devices and per-step detail, each table with its formula and the findings
of the consistency checks beside its rows. Rows are sweep points (collector/points.py); steps the agent
flagged (client saturated) or that were cut short are marked in every table that shows them, and the
banners (verdict.py) say where each run stands and whether the report is publishable as is. Renderers
(markdown, csv, json, html) only format this.

The parts: report.py (the types), tables.py, device_tables.py and cost_table.py (each table declared
as columns over a row source), findings.py (checks and step flags), cost.py (prices), verdict.py
(banners), definitions.py (prose)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.figures import Figures
from siliconbench.collector.lifecycle import Lifecycle, lifecycle
from siliconbench.collector.answers import Answers, load_answers
from siliconbench.collector.reports.answer_tables import answer_tables
from siliconbench.collector.reports.session_tables import session_tables
from siliconbench.collector.reports.boundary import load_boundaries
from siliconbench.collector.reports.cost import load_costs
from siliconbench.collector.reports.cost_table import cost_table
from siliconbench.collector.reports.device_tables import device_tables
from siliconbench.collector.reports.findings import ended_early, point_findings, step_flags
from siliconbench.collector.reports.report import Options, Report
from siliconbench.collector.reports.spread import Spread, load_spread
from siliconbench.collector.reports.table import LOAD_COLUMNS, Table
from siliconbench.collector.reports.checks_table import checks_table
from siliconbench.collector.reports.server_table import server_table
from siliconbench.collector.reports.tables import sweep_tables
from siliconbench.collector.reports.trace_tables import trace_tables
from siliconbench.collector.rollups import Selection, Series, Slo, run_slo, select_series, start_figures
from siliconbench.collector.sessions import Sessions, load_sessions
from siliconbench.collector.step_views import RUNS_WHERE, Need
from siliconbench.collector.need import need as find_need
from siliconbench.collector.trace_figures import load_trace_steps
from siliconbench.collector.store import Store
from siliconbench.collector.workload import differences, plan_of


def build_report(store: Store, selection: Selection, options: Options) -> Report:
    series = select_series(store, selection)
    baseline = _baseline(series, options.baseline)
    slo = options.slo if options.slo.given else run_slo(series)  # the runs' own SLO unless --slo overrides it
    # Every read at once on the store's readers (Store.started). Those that follow what the steps need start
    # beside its check, as if every step and node were kept (a finished run's report); they stand if the check
    # finds just that, else they are read again as it says.
    need_read = store.started(
        lambda: find_need(store, RUNS_WHERE, {"runs": sorted({s.run_id for s in series}), **slo.params()}))
    guessed = _start_reads(store, series, slo, ALL_KEPT)
    runs_read, boundaries_read = store.started(lambda: _lifecycles(store, series)), store.started(
        lambda: load_boundaries(store, series))
    traces_read = store.started(lambda: load_trace_steps(store, series, slo))
    need = need_read.result()
    if need != ALL_KEPT:
        guessed.cancel()
    figures, spread, answers, sessions = (guessed if need == ALL_KEPT else _start_reads(store, series, slo, need)).result()
    runs, boundaries, traces = runs_read.result(), boundaries_read.result(), traces_read.result()
    costs = load_costs(store, series, figures, options.region, options.price_kind) if options.cost else []
    findings = [f for s in series for f in point_findings(s, figures)]
    flags = [f for s in series for f in step_flags(s, figures)]
    title = (f"siliconbench run {series[0].run_id}" if len({s.run_id for s in series}) == 1
             else f"siliconbench report: {selection.describe()}")
    report = Report(title=title, generated_at=dt.datetime.now(dt.timezone.utc), store=store.location.shown,
                    selection=selection, slo=slo, baseline=baseline.label, region=options.region,
                    price_kind=options.price_kind, series=series, figures=figures, tables=[], findings=findings,
                    costs=costs, runs=runs, flags=flags,
                    mixed=_mixed(series, baseline), allow_mixed=options.allow_mixed_workloads,
                    spread=spread, answers=answers, sessions=sessions, boundaries=boundaries, traces=traces)
    for s in series:  # the workload line states what was served where it is not what was asked
        if early := ended_early(figures.steps_of(s)):
            report.spread.workloads[s.run_id] = f"{report.spread.workloads.get(s.run_id, 'unknown')}; {early}"
    report.tables = (sweep_tables(report) + [server_table(report), checks_table(report)]
                     + ([cost_table(report)] if options.cost else []) + answer_tables(report)
                     + session_tables(report) + trace_tables(report) + device_tables(report))
    for table in report.tables:
        shown = _points_shown(table)
        table.findings = ([f for f in findings if f.figure == table.key]
                          + [f for f in flags if (f.subject, f.point) in shown])
    return report


# What a report needs when every step and node of its runs is kept under their own SLO (collector/need.py)
ALL_KEPT = Need(compute=False, goodput=False, compute_answers=False, compute_models=False, compute_devices=False,
                sessions=False, not_kept=0)


@dataclass(frozen=True, slots=True)
class _Reads:
    """The reads that follow what the steps need, started: the figures (their reads first: the longest), the
    distributions, the answers and the sessions."""

    figures: Callable[[], Figures]
    more: tuple[Future, ...]

    def result(self) -> tuple[Figures, Spread, Answers, Sessions]:
        figures = self.figures()
        spread, answers, sessions = (read.result() for read in self.more)
        return figures, spread, answers, sessions

    def cancel(self) -> None:
        """Leave out the distributions, answers and sessions not begun yet (the figure reads, begun first, and
        any read under way end unread)."""
        for read in self.more:
            read.cancel()


def _start_reads(store: Store, series: list[Series], slo: Slo, need: Need) -> _Reads:
    figures = start_figures(store, series, slo, need)
    return _Reads(figures, (store.started(lambda: load_spread(store, series, need)),
                            store.started(lambda: load_answers(store, series, need)),
                            store.started(lambda: load_sessions(store, series, slo, need))))


def _points_shown(table: Table) -> set[tuple[str, str]]:
    """(series label, point label) of each row of a table that has a load column."""
    names = [c.name for c in table.columns]
    column = next((names.index(n) for n in LOAD_COLUMNS if n in names), None)
    return set() if column is None else {(row[0], row[column]) for row in table.rows}


def _lifecycles(store: Store, series: list[Series]) -> dict[str, Lifecycle]:
    return {run_id: lifecycle(store, run_id) for run_id in sorted({s.run_id for s in series})}


def _mixed(series: list[Series], baseline: Series) -> dict[str, list[str]]:
    base = plan_of(baseline.config_json)
    found = {s.label: differences(plan_of(s.config_json), base) for s in series}
    return {label: diff for label, diff in found.items() if diff}


def _baseline(series: list[Series], wanted: str | None) -> Series:
    if wanted is None:
        return series[0]
    for s in series:
        if wanted in (s.label, s.scenario, s.run_id):
            return s
    raise InvalidOption(f"--baseline {wanted!r} is none of the report's series: "
                        f"{', '.join(s.label for s in series)}")
