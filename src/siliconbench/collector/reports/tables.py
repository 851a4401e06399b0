"""The report's tables over sweep points, as declarations: for each, its columns (title, kind, getter)
over one source per row — a series at one of its sweep points (`At`) — and its caption; `sweep_tables`
builds them. Devices and steps (device_tables.py) and cost (cost_table.py) are declared the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from siliconbench.collector import checks
from siliconbench.collector.check_outcomes import outcomes, summary
from siliconbench.collector.checks import PointFigures
from siliconbench.collector.figures import PointRow, SweepFigures
from siliconbench.collector.reports.definitions import STEADY_TEXT
from siliconbench.collector.reports.findings import point_figures
from siliconbench.collector.reports.picks import across, load, lowest, median, pct_of, peak, q, ratio, relative
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import INT, MS, NUM, PCT, RATIO, REL, RPS, TEXT, TPS, Declared, Table, cell
from siliconbench.collector.rollups import Series
from siliconbench.collector.workload import plan_of, requests_shape, steps_text
from siliconbench.core.plan import Plan


@dataclass(frozen=True, slots=True)
class At:
    """One row's source: a series of the report at one of its sweep points (None: the series has none)."""

    report: Report
    series: Series
    point: PointRow | None

    @property
    def m(self) -> SweepFigures:
        return median(self.point)

    @property
    def points(self) -> list[PointRow]:
        return self.report.figures.points_of(self.series)

    @property
    def closed(self) -> bool:
        return self.point is not None and not self.point.point.open_loop

    def marks(self, *figures: str) -> str:
        """The marks of the checks on `figures` at this point, then the step flags there."""
        r, label, at = self.report, self.series.label, load(self.point)
        found = [f.short() for f in r.findings if f.subject == label and f.figure in figures and f.point == at]
        found += [f.short() for f in r.flags if f.subject == label and f.point == at]
        if not found and self.point is not None:  # nothing found: what the checks did (table 4d)
            return summary(outcomes(self.checked()))
        return "; ".join(dict.fromkeys(found))

    def vs(self, metric: Callable[[Series], float | None]) -> float | None:
        """`metric` of this series relative to the baseline's; None across workloads unless asked."""
        if not self.report.compared(self.series):
            return None
        return relative(metric(self.series), metric(self.report.baseline_series))

    def checked(self) -> PointFigures:
        assert self.point is not None
        return point_figures(self.series.label, self.point, self.report.figures.steps_at(self.series, self.point))


def at_lightest(report: Report) -> Iterable[At]:
    return (At(report, s, lowest(report.figures.points_of(s))) for s in report.series)


def at_peak(report: Report) -> Iterable[At]:
    return (At(report, s, peak(report.figures.points_of(s))) for s in report.series)


def at_every_point(report: Report) -> Iterable[At]:
    return (At(report, s, p) for s in report.series for p in report.figures.points_of(s))


def at_open_points(report: Report) -> Iterable[At]:
    return (a for a in at_every_point(report) if a.point is not None and a.point.point.open_loop)


def _lightest(report: Report, figure: Callable[[SweepFigures], float | None]) -> Callable[[Series], float | None]:
    return lambda s: figure(median(lowest(report.figures.points_of(s))))


# ---- workload -----------------------------------------------------------------------------------------

def _against(a: At) -> str:
    r, s = a.report, a.series
    diff = r.mixed.get(s.label)
    if s.label == r.baseline:
        return "baseline"
    if diff:
        return f"differs: {', '.join(diff)}{' (compared anyway)' if r.allow_mixed else ''}"
    return "same workload" if plan_of(s.config_json) is not None else ""


def _planned(get: Callable[[Plan], object], missing: object = None) -> Callable[[At], object]:
    """A workload cell from the series' stored plan; `missing` where it stored none."""
    def cell_of(a: At) -> object:
        plan = plan_of(a.series.config_json)
        return missing if plan is None else get(plan)
    return cell_of


WORKLOAD = Declared("workload", "Workload of each run", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Run", TEXT, lambda a: a.series.run_id),
    cell("endpoint", TEXT, _planned(lambda p: p.endpoint, "not recorded (the run stored no readable plan)")),
    cell("prompt tokens", INT, _planned(lambda p: requests_shape(p)["prompt tokens"])),
    cell("output tokens", INT, _planned(lambda p: p.output_tokens)),
    cell("prompts", TEXT, _planned(lambda p: requests_shape(p)["prompts"], "")),
    cell("steps (one repetition)", TEXT, _planned(steps_text, "")),
    cell("warm-up requests", INT, _planned(lambda p: p.warmup_requests)),
    cell("repetitions", INT, _planned(lambda p: p.repetitions)),
    cell("seed", INT, _planned(lambda p: p.seed)),
    cell("vs baseline", TEXT, _against),
))
WORKLOAD_CAPTION = ("From the plan each agent stored with its run. Runs whose requests differ (endpoint, prompt "
                    "or output tokens, prompt source) are not compared with the baseline unless "
                    "--allow-mixed-workloads is given.")

# ---- 1. TTFT, 2. ITL at the lightest load ---------------------------------------------------------------

TTFT = Declared("ttft", "1. Time to first token (TTFT), at the lightest load of each sweep", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Instance", TEXT, lambda a: a.series.instance_type),
    cell("Load", TEXT, lambda a: load(a.point)),
    cell("TTFT p50", MS, lambda a: q(a.m.ttft_ms).p50),
    cell("p90", MS, lambda a: q(a.m.ttft_ms).p90),
    cell("p99", MS, lambda a: q(a.m.ttft_ms).p99),
    cell("mean", MS, lambda a: a.m.ttft_mean_ms),
    cell("p50 across repetitions", TEXT, lambda a: across(a.point, lambda f: q(f.ttft_ms).p50)),
    cell("vs baseline", REL, lambda a: a.vs(_lightest(a.report, lambda f: q(f.ttft_ms).p50))),
    cell("checks", TEXT, lambda a: a.marks(checks.TTFT)),
))
TTFT_CAPTION = ("TTFT = send → first content-bearing chunk, per successful request; percentiles over the "
                "step's requests, then the median of the repetitions. vs baseline compares p50.")

ITL = Declared("itl", "2. Inter-token latency (ITL) and TPOT, at the lightest load of each sweep", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Instance", TEXT, lambda a: a.series.instance_type),
    cell("Load", TEXT, lambda a: load(a.point)),
    cell("ITL/token p50", MS, lambda a: q(a.m.itl_token_ms).p50),
    cell("ITL/token p90", MS, lambda a: q(a.m.itl_token_ms).p90),
    cell("ITL/token p99", MS, lambda a: q(a.m.itl_token_ms).p99),
    cell("chunk-ITL p50", MS, lambda a: q(a.m.itl_ms).p50),
    cell("tokens/chunk", RATIO, lambda a: a.m.tokens_per_chunk),
    cell("TPOT p50", MS, lambda a: q(a.m.tpot_ms).p50),
    cell("TPOT mean", MS, lambda a: a.m.tpot_mean_ms),
    cell("vs baseline", REL, lambda a: a.vs(_lightest(a.report, lambda f: q(f.itl_token_ms).p50))),
    cell("checks", TEXT, lambda a: a.marks(checks.ITL)),
))
ITL_CAPTION = ("chunk-ITL = gap between consecutive content chunks; ITL/token = gap ÷ tokens in the chunk; "
               "TPOT = (E2E − TTFT) ÷ (output tokens − 1). vs baseline compares ITL/token p50.")

# ---- 3. throughput at the peak ------------------------------------------------------------------------


def _best_goodput(a: At) -> SweepFigures:
    return median(peak(a.points, lambda f: f.goodput_output_tps))


THROUGHPUT = Declared("throughput", "3. Throughput: peak of the sweep", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Instance", TEXT, lambda a: a.series.instance_type),
    cell("peak output tok/s", TPS, lambda a: a.m.output_tps),
    cell("at", TEXT, lambda a: load(a.point)),
    cell("across repetitions", TEXT, lambda a: across(a.point, lambda f: f.output_tps)),
    cell("steady output tok/s", TPS, lambda a: a.m.steady_output_tps),
    cell("total tok/s", TPS, lambda a: a.m.total_tps),
    cell("req/s", RPS, lambda a: a.m.rps),
    cell("output tok/s at the lightest load", TPS, lambda a: median(lowest(a.points)).output_tps),
    cell("goodput output tok/s", TPS, lambda a: _best_goodput(a).goodput_output_tps),
    cell("goodput req/s", RPS, lambda a: _best_goodput(a).goodput_rps),
    cell("errors", INT, lambda a: sum(int(x.errors) for x in a.report.figures.steps_of(a.series))),
    cell("vs baseline", REL, lambda a: a.vs(lambda s: median(peak(a.report.figures.points_of(s))).output_tps)),
    cell("checks", TEXT, lambda a: a.marks(checks.THROUGHPUT)),
))


def throughput_caption(report: Report) -> str:
    return ("output tok/s = Σ output tokens (server usage) ÷ step wall time (first request start → last "
            f"request end); {STEADY_TEXT} total tok/s counts prompt + output tokens; req/s counts "
            "successful requests. "
            f"Goodput counts requests that met the SLOs ({report.slo.describe()}), best point of the sweep. "
            "vs baseline compares peak output tok/s.")


# ---- 4. scaling over every point ----------------------------------------------------------------------

def _first_closed(a: At) -> SweepFigures:
    """The medians at the series' lowest closed-loop concurrency: what scaling is relative to."""
    return median(lowest([p for p in a.points if not p.point.open_loop]))


def _vs_baseline_at_point(a: At) -> float | None:
    if not a.report.compared(a.series) or a.point is None:
        return None
    same = [p for p in a.report.figures.points_of(a.report.baseline_series) if p.point == a.point.point]
    return relative(a.m.output_tps, same[0].median.output_tps if same else None)


SCALING = Declared("scaling", "4. Concurrency scaling, and every sweep point", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Load", TEXT, lambda a: load(a.point)),
    cell("output tok/s", TPS, lambda a: a.m.output_tps),
    cell("across repetitions", TEXT, lambda a: across(a.point, lambda f: f.output_tps)),
    cell("steady output tok/s", TPS, lambda a: a.m.steady_output_tps),
    cell("total tok/s", TPS, lambda a: a.m.total_tps),
    cell("req/s", RPS, lambda a: a.m.rps),
    cell("mean in flight", NUM, lambda a: a.m.mean_in_flight),
    cell("time at full concurrency", PCT, lambda a: pct_of(a.m.full_concurrency_share)),
    cell("TTFT p50", MS, lambda a: q(a.m.ttft_ms).p50),
    cell("TPOT p50", MS, lambda a: q(a.m.tpot_ms).p50),
    cell("E2E p50", MS, lambda a: q(a.m.e2e_ms).p50),
    cell("goodput output tok/s", TPS, lambda a: a.m.goodput_output_tps),
    cell("scaling", RATIO, lambda a: ratio(a.m.output_tps, _first_closed(a).output_tps) if a.closed else None),
    cell("steady scaling", RATIO,
         lambda a: ratio(a.m.steady_output_tps, _first_closed(a).steady_output_tps) if a.closed else None),
    cell("vs baseline", REL, _vs_baseline_at_point),
    cell("checks", TEXT, lambda a: a.marks(checks.SCALING, checks.THROUGHPUT)),
))
SCALING_CAPTION = ("Median of the repetitions at each sweep point (mode, concurrency, rate). mean in flight = "
                   "Σ E2E ÷ step wall time (a closed step at concurrency C reads C only if it ran at full "
                   "concurrency throughout; below it the ramp and drain weigh); time at full concurrency = share "
                   "of the step's wall time with all its streams in flight (closed loop). output tok/s and req/s are "
                   f"over the whole step; {STEADY_TEXT} scaling = output tok/s ÷ output tok/s at the sweep's lowest "
                   "closed-loop concurrency, steady scaling the same with the steady figures (closed-loop points "
                   "only); vs baseline compares output tok/s at the same point.")

# ---- 4b. latency versus offered load ------------------------------------------------------------------

OFFERED_LOAD = Declared("load", "4b. Latency versus offered load (open-loop rate steps)", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Load", TEXT, lambda a: load(a.point)),
    cell("offered req/s", RPS, lambda a: a.point.point.rate_rps or None),
    cell("sent req/s", RPS, lambda a: a.m.sent_rps),
    cell("completed req/s", RPS, lambda a: a.m.rps),
    cell("dispatch delay mean", MS, lambda a: a.m.dispatch_mean_ms),
    cell("dispatch delay p99", MS, lambda a: a.m.dispatch_p99_ms),
    cell("mean in flight", NUM, lambda a: a.m.mean_in_flight),
    cell("TTFT p50", MS, lambda a: q(a.m.ttft_ms).p50),
    cell("TTFT p99", MS, lambda a: q(a.m.ttft_ms).p99),
    cell("E2E p50", MS, lambda a: q(a.m.e2e_ms).p50),
    cell("E2E p99", MS, lambda a: q(a.m.e2e_ms).p99),
    cell("output tok/s", TPS, lambda a: a.m.output_tps),
    cell("errors", INT, lambda a: a.m.errors),
    cell("checks", TEXT, lambda a: a.marks(checks.THROUGHPUT, checks.SCALING)),
), empty="No open-loop (rate) steps in these runs. ")
OFFERED_LOAD_CAPTION = ("Open-loop points (Poisson or constant arrivals at the offered rate, with the cap on requests "
                        "in flight if any), median of the repetitions. sent = (requests − 1) ÷ (last send − first "
                        "send); completed = successful requests ÷ step wall time; dispatch delay = send time − "
                        "scheduled time (exact p99 over the step's requests): above a few ms without a cap the client "
                        "sent late, with a cap the requests waited for a free slot.")

def sweep_tables(report: Report) -> list[Table]:
    """The tables over the series' sweep points, in the report's order up to the server table."""
    every = list(at_every_point(report))
    return [WORKLOAD.build((At(report, s, None) for s in report.series), WORKLOAD_CAPTION),
            TTFT.build(at_lightest(report), TTFT_CAPTION),
            ITL.build(at_lightest(report), ITL_CAPTION),
            THROUGHPUT.build(at_peak(report), throughput_caption(report)),
            SCALING.build(every, SCALING_CAPTION),
            OFFERED_LOAD.build(at_open_points(report), OFFERED_LOAD_CAPTION)]
