"""The report as data: the workload of each run, the reference report's five tables (TTFT, ITL,
throughput, concurrency scaling, $/1M tokens), latency versus offered load (rate steps), the server's
figures beside the client's, devices and per-step detail, each table with its formula and the findings
of the consistency checks beside its rows. Rows are sweep points (collector/points.py); steps the agent
flagged (client saturated) or that were cut short are marked in every table that shows them, and the
banners say where each run stands and whether the report is publishable as is. Renderers (markdown,
csv, json, html) only format this."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field

from siliconbench.collector import checks
from siliconbench.collector.checks import Finding, PointFigures
from siliconbench.collector.errors import InvalidOption, PriceMissing
from siliconbench.collector.lifecycle import Lifecycle, lifecycle
from siliconbench.collector.points import Point
from siliconbench.collector.prices import FORMULA as COST_FORMULA
from siliconbench.collector.prices import Price, price_for, usd_per_million
from siliconbench.collector.reports.spread import Spread, load_spread
from siliconbench.collector.rollups import Figures, Selection, Series, Slo, load_figures, select_series
from siliconbench.collector.store import Store
from siliconbench.collector.workload import differences, plan_of, requests_shape, steps_text
from siliconbench.core.saturation import saturation_reasons

log = logging.getLogger(__name__)

# Column kinds tell renderers how to format a value; CSV/JSON keep the raw number.
TEXT, INT, MS, TPS, RPS, USD, PCT, JOULE, WATT, GB, RATIO, REL, NUM = (
    "text", "int", "ms", "tok/s", "req/s", "usd", "pct", "J", "W", "GB", "x", "rel", "num")
LOAD_COLUMNS = ("Load", "at", "load")  # the columns that name a row's sweep point (collector/points.py)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str = TEXT


@dataclass(slots=True)
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    caption: str = ""
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class Cost:
    series: Series
    price: Price | None
    peak: dict | None
    goodput: dict | None
    note: str = ""


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

    def compared(self, s: Series) -> bool:
        """Whether `s` gets a 'vs baseline' figure: the same workload as the baseline, or asked for."""
        return self.allow_mixed or s.label not in self.mixed

    @property
    def unfinished(self) -> dict[str, str]:
        """run id -> state, for the runs that did not run to their end with everything stored."""
        return {run_id: life.state for run_id, life in self.runs.items() if not life.finished}

    @property
    def simulated(self) -> list[str]:
        return [s.label for s in self.series if s.simulated]

    @property
    def publishable(self) -> bool:
        """As is: every run finished, no step flagged (saturation, cut short), one workload, no warning."""
        return not (self.unfinished or self.flags or self.mixed
                    or any(f.severity == "warning" for f in self.findings))

    def verdict(self) -> str:
        """The summary's one line: publishable as is, or why not."""
        if self.publishable:
            return "Publishable as is: every run finished, no step was flagged and every check passed."
        why = []
        if self.unfinished:
            why.append(f"{len(self.unfinished)} run(s) not finished")
        saturated = [f for f in self.flags if f.check == SATURATED]
        if saturated:
            why.append(f"{len(saturated)} sweep point(s) where the client may have limited the load")
        if len(saturated) < len(self.flags):
            why.append(f"{len(self.flags) - len(saturated)} sweep point(s) with partial steps")
        if self.mixed:
            why.append(f"{len(self.mixed)} series with a workload other than the baseline's")
        warned = sum(1 for f in self.findings if f.severity == "warning")
        if warned:
            why.append(f"{warned} check warning(s)")
        return "NOT publishable as is: " + "; ".join(why) + " (each is marked beside its figures below)."

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


def build_report(store: Store, selection: Selection, options: Options) -> Report:
    series = select_series(store, selection)
    baseline = _baseline(series, options.baseline)
    figures = load_figures(store, series, options.slo)
    costs = _costs(store, series, figures, options) if options.cost else []
    findings = [f for s in series for f in _point_findings(s, figures)]
    flags = [f for s in series for f in _step_flags(s, figures)]
    title = (f"siliconbench run {series[0].run_id}" if len({s.run_id for s in series}) == 1
             else f"siliconbench report: {selection.describe()}")
    report = Report(title=title, generated_at=dt.datetime.now(dt.timezone.utc), store=store.location.shown,
                    selection=selection, slo=options.slo, baseline=baseline.label, region=options.region,
                    price_kind=options.price_kind, series=series, figures=figures, tables=[], findings=findings,
                    costs=costs, runs=_lifecycles(store, series), flags=flags,
                    mixed=_mixed(series, baseline), allow_mixed=options.allow_mixed_workloads,
                    spread=load_spread(store, series))
    report.tables = [_workload(report), _ttft(report), _itl(report), _throughput(report), _scaling(report),
                     _offered_load(report), _server(report)]
    if options.cost:
        report.tables.append(_cost(report))
    report.tables += [_devices(report), _device_detail(report), _steps(report)]
    for table in report.tables:
        shown = _points_shown(table)
        table.findings = ([f for f in findings if f.figure == table.key]
                          + [f for f in flags if (f.subject, f.point) in shown])
    return report


def _points_shown(table: Table) -> set[tuple[str, str]]:
    """(series label, point label) of each row of a table that has a load column."""
    names = [c.name for c in table.columns]
    column = next((names.index(n) for n in LOAD_COLUMNS if n in names), None)
    return set() if column is None else {(row[0], row[column]) for row in table.rows}


def _lifecycles(store: Store, series: list[Series]) -> dict[str, Lifecycle]:
    return {run_id: lifecycle(store, run_id) for run_id in sorted({s.run_id for s in series})}


def banners(report: Report) -> list[str]:
    """What heads the report in every format, most important first: unfinished runs, then whether the
    figures may be published as they are."""
    out = [unfinished_banner(report)] if report.unfinished else []
    out.append("Run state: " + "; ".join(f"{run_id} {life.describe()}" for run_id, life in report.runs.items()))
    out.append(report.verdict())
    if report.mixed:
        out.append(mixed_banner(report))
    return out


def _mixed(series: list[Series], baseline: Series) -> dict[str, list[str]]:
    base = plan_of(baseline.config_json)
    found = {s.label: differences(plan_of(s.config_json), base) for s in series}
    return {label: diff for label, diff in found.items() if diff}


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


def _baseline(series: list[Series], wanted: str | None) -> Series:
    if wanted is None:
        return series[0]
    for s in series:
        if wanted in (s.label, s.scenario, s.run_id):
            return s
    raise InvalidOption(f"--baseline {wanted!r} is none of the report's series: "
                        f"{', '.join(s.label for s in series)}")


# ---- picking points -------------------------------------------------------------------------------

def lowest(points: list[dict]) -> dict | None:
    """The lightest load: the lowest closed-loop concurrency, else the lowest offered rate."""
    return min(points, key=lambda p: Point.of(p).order(), default=None)


def load(point: dict | None) -> str | None:
    """The point's label (collector/points.py): 'concurrency 8', 'poisson 4 req/s, cap 16'."""
    return None if point is None else Point.of(point).label()


def peak(points: list[dict], metric: str = "output_tps") -> dict | None:
    return max(points, key=lambda p: _num(p.get(metric)) or 0.0, default=None)


def _num(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _q(point: dict | None, name: str, i: int) -> float | None:
    if point is None or not point.get(name):
        return None
    return _num(point[name][i])


def _get(point: dict | None, name: str) -> float | None:
    return None if point is None else _num(point.get(name))


def _pct_of(share: float | None) -> float | None:
    return None if share is None else share * 100


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def relative(value: float | None, base: float | None) -> float | None:
    """value ÷ base − 1, the 'vs baseline' figure."""
    if value is None or base is None or base == 0:
        return None
    return value / base - 1


def _range(point: dict | None, name: str, i: int | None = None) -> str:
    if point is None or point.get("repetitions", 0) < 2:
        return ""
    low, high = point.get(name + "_min"), point.get(name + "_max")
    if i is not None:
        low, high = (low or [None] * 4)[i], (high or [None] * 4)[i]
    if _num(low) is None or _num(high) is None:
        return ""
    return f"{low:,.1f}–{high:,.1f} (n={point['repetitions']})"


def _marks(report: Report, label: str, figures: tuple[str, ...], point: dict | None) -> str:
    """The marks of the checks on the figures in `figures` at `point`, then the step flags there."""
    at = load(point)
    found = [f.short() for f in report.findings if f.subject == label and f.figure in figures and f.point == at]
    found += [f.short() for f in report.flags if f.subject == label and f.point == at]
    return "; ".join(dict.fromkeys(found))


# ---- checks ------------------------------------------------------------------------------------------

def point_figures(label: str, point: dict, steps: list[dict]) -> PointFigures:
    mine = [s for s in steps if s["step"] in set(point.get("steps") or [])]
    served = [s for s in mine if s.get("has_server_tokens")]
    ttfts = [t for s in mine if (t := _num(s.get("server_ttft_mean_ms"))) is not None]
    return PointFigures(
        subject=label, concurrency=point["concurrency"], mode=Point.of(point).mode, rate_rps=Point.of(point).rate_rps,
        mean_in_flight=_get(point, "mean_in_flight"), sent_rps=_get(point, "sent_rps"),
        full_share=_get(point, "full_concurrency_share"), output_tps=_get(point, "output_tps"), rps=_get(point, "rps"),
        steady_output_tps=_get(point, "steady_output_tps"), steady_s=_get(point, "steady_s"),
        e2e_mean_ms=_get(point, "e2e_mean_ms"), tpot_mean_ms=_get(point, "tpot_mean_ms"),
        itl_token_mean_ms=_get(point, "itl_token_mean_ms"), itl_chunk_p50_ms=_q(point, "itl_ms", 0),
        itl_token_p50_ms=_q(point, "itl_token_ms", 0), ttft_mean_ms=_get(point, "ttft_mean_ms"),
        requests=int(sum(s["requests"] for s in mine)), errors=int(sum(s["errors"] for s in mine)),
        client_tokens=float(sum(s["tokens_out"] for s in served)) if served else None,
        server_tokens=float(sum(s["server_tokens_out"] for s in served)) if served else None,
        server_ttft_mean_ms=sum(ttfts) / len(ttfts) if ttfts else None,
    )


def _point_findings(s: Series, figures: Figures) -> list[Finding]:
    steps = figures.steps_of(s)
    found = [f for p in figures.points_of(s) for f in checks.check_point(point_figures(s.label, p, steps))]
    return found + _cache_findings(s, figures)


# Above this share of prompt tokens served from vLLM's prefix cache, prompts meant to be unique were not.
UNEXPECTED_CACHE_HITS = 0.10


def _cache_findings(s: Series, figures: Figures) -> list[Finding]:
    """A warning where the prefix cache served prompts the workload meant to be unique (synthetic prompts
    without shared_prompts); dataset and shared prompts repeat by design, so they get none."""
    plan = plan_of(s.config_json)
    if plan is None or plan.shared_prompts or plan.dataset:
        return []
    out = []
    for p in figures.points_of(s):
        rate = _get(p, "prefix_cache_hit_rate")
        if rate is not None and rate > UNEXPECTED_CACHE_HITS:
            out.append(Finding("prefix cache", s.label, load(p), checks.TTFT,
                               f"vLLM served {rate:.0%} of prompt tokens from its prefix cache although the prompts "
                               "were meant to be unique: TTFT reads low (another client sending the same prompts?)"))
    return out


SATURATED, PARTIAL = "client saturated", "partial step"
# Host CPU (all cores) above this while the agent's own CPU stayed below AGENT_IDLE_PCT: the loop lag
# came from the node's load (vLLM sharing the cores), not from the agent's work.
NODE_BUSY_PCT, AGENT_IDLE_PCT = 70.0, 50.0


def step_flag(step: dict, host_cpu_pct: float | None) -> str:
    """Why the agent flagged a step as client-saturated, in words, with the likely cause."""
    point = Point.of(step)
    reasons = saturation_reasons(_num(step.get("agent_cpu_pct")) or 0.0, _num(step.get("loop_lag_p99_ms")) or 0.0,
                                 _num(step.get("dispatch_p99_ms")) or 0.0, point.open_loop and not point.capped)
    text = ", ".join(reasons) or "a load worker process was lost or crossed a threshold"
    agent_cpu = _num(step.get("agent_cpu_pct")) or 0.0
    if host_cpu_pct is not None and host_cpu_pct >= NODE_BUSY_PCT and agent_cpu < AGENT_IDLE_PCT:
        return (f"{text}; the node's CPU was {host_cpu_pct:.0f}% busy while the agent used {agent_cpu:.0f}% of a core: "
                "the server shares the agent's cores (run the agent on other cores or another node)")
    if agent_cpu >= AGENT_IDLE_PCT:
        return f"{text}; the agent's own CPU: give it more workers (--workers) or a faster core"
    return text


def _step_flags(s: Series, figures: Figures) -> list[Finding]:
    """One finding per sweep point with a step the agent flagged (reasons in words) or a step cut short."""
    out = []
    for p in figures.points_of(s):
        point = Point.of(p)
        steps = [st for st in figures.steps_of(s) if st["step"] in set(p.get("steps") or [])]
        node = figures.node_of(s, point) or {}
        flagged = [st for st in steps if st.get("client_saturated")]
        if flagged:
            why = "; ".join(dict.fromkeys(step_flag(st, _num(node.get("host_cpu_mean_pct"))) for st in flagged))
            out.append(Finding(SATURATED, s.label, point.label(), SATURATED,
                               f"{len(flagged)} of {len(steps)} step(s) flagged by the agent ({why}): "
                               "the load may not be the one asked for; not publishable as is"))
        partial = [st for st in steps if not st.get("has_step")]
        if partial:
            out.append(Finding(PARTIAL, s.label, point.label(), PARTIAL,
                               f"{len(partial)} of {len(steps)} step(s) have no end record (the run stopped inside "
                               "them): their figures cover only the requests stored"))
    return out


# ---- the tables ---------------------------------------------------------------------------------------

def _vs(report: Report, s: Series, metric) -> float | None:
    """`metric` of `s` relative to the baseline's; None across workloads unless asked (Report.compared)."""
    if not report.compared(s):
        return None
    base = next(b for b in report.series if b.label == report.baseline)
    return relative(metric(s), metric(base))


def _workload(report: Report) -> Table:
    t = Table("workload", "Workload of each run",
              [Column("Scenario"), Column("Run"), Column("endpoint"), Column("prompt tokens", INT),
               Column("output tokens", INT), Column("prompts"), Column("steps (one repetition)"),
               Column("warm-up requests", INT), Column("repetitions", INT), Column("seed", INT),
               Column("vs baseline")],
              caption="From the plan each agent stored with its run. Runs whose requests differ (endpoint, prompt "
                      "or output tokens, prompt source) are not compared with the baseline unless "
                      "--allow-mixed-workloads is given.")
    for s in report.series:
        plan = plan_of(s.config_json)
        diff = report.mixed.get(s.label)
        against = ("baseline" if s.label == report.baseline else
                   f"differs: {', '.join(diff)}{' (compared anyway)' if report.allow_mixed else ''}" if diff else
                   "same workload" if plan is not None else "")
        if plan is None:
            t.rows.append([s.label, s.run_id, "not recorded (the run stored no readable plan)", None, None, "", "",
                           None, None, None, against])
            continue
        shape = requests_shape(plan)
        t.rows.append([s.label, s.run_id, plan.endpoint, shape["prompt tokens"], plan.output_tokens, shape["prompts"],
                       steps_text(plan), plan.warmup_requests, plan.repetitions, plan.seed, against])
    return t


def _ttft(report: Report) -> Table:
    fig = report.figures
    t = Table("ttft", "1. Time to first token (TTFT), at the lightest load of each sweep",
              [Column("Scenario"), Column("Instance"), Column("Load"), Column("TTFT p50", MS),
               Column("p90", MS), Column("p99", MS), Column("mean", MS), Column("p50 across repetitions"),
               Column("vs baseline", REL), Column("checks")],
              caption="TTFT = send → first content-bearing chunk, per successful request; percentiles over the "
                      "step's requests, then the median of the repetitions. vs baseline compares p50.")
    metric = lambda s: _q(lowest(fig.points_of(s)), "ttft_ms", 0)  # noqa: E731
    for s in report.series:
        p = lowest(fig.points_of(s))
        t.rows.append([s.label, s.instance_type, load(p), _q(p, "ttft_ms", 0), _q(p, "ttft_ms", 1),
                       _q(p, "ttft_ms", 3), _get(p, "ttft_mean_ms"), _range(p, "ttft_ms", 0),
                       _vs(report, s, metric), _marks(report, s.label, (checks.TTFT,), p)])
    return t


def _itl(report: Report) -> Table:
    fig = report.figures
    t = Table("itl", "2. Inter-token latency (ITL) and TPOT, at the lightest load of each sweep",
              [Column("Scenario"), Column("Instance"), Column("Load"), Column("ITL/token p50", MS),
               Column("ITL/token p90", MS), Column("ITL/token p99", MS), Column("chunk-ITL p50", MS),
               Column("tokens/chunk", RATIO), Column("TPOT p50", MS), Column("TPOT mean", MS),
               Column("vs baseline", REL), Column("checks")],
              caption="chunk-ITL = gap between consecutive content chunks; ITL/token = gap ÷ tokens in the chunk; "
                      "TPOT = (E2E − TTFT) ÷ (output tokens − 1). vs baseline compares ITL/token p50.")
    metric = lambda s: _q(lowest(fig.points_of(s)), "itl_token_ms", 0)  # noqa: E731
    for s in report.series:
        p = lowest(fig.points_of(s))
        t.rows.append([s.label, s.instance_type, load(p), _q(p, "itl_token_ms", 0),
                       _q(p, "itl_token_ms", 1), _q(p, "itl_token_ms", 3), _q(p, "itl_ms", 0),
                       _get(p, "tokens_per_chunk"), _q(p, "tpot_ms", 0), _get(p, "tpot_mean_ms"),
                       _vs(report, s, metric), _marks(report, s.label, (checks.ITL,), p)])
    return t


def _throughput(report: Report) -> Table:
    fig = report.figures
    t = Table("throughput", "3. Throughput: peak of the sweep",
              [Column("Scenario"), Column("Instance"), Column("peak output tok/s", TPS), Column("at"),
               Column("across repetitions"), Column("steady output tok/s", TPS), Column("total tok/s", TPS),
               Column("req/s", RPS),
               Column("output tok/s at the lightest load", TPS), Column("goodput output tok/s", TPS),
               Column("goodput req/s", RPS), Column("errors", INT), Column("vs baseline", REL), Column("checks")],
              caption="output tok/s = Σ output tokens (server usage) ÷ step wall time (first request start → last "
                      f"request end); {STEADY_TEXT} total tok/s counts prompt + output tokens; req/s counts "
                      "successful requests. "
                      f"Goodput counts requests that met the SLOs ({report.slo.describe()}), best point of the sweep. "
                      "vs baseline compares peak output tok/s.")
    metric = lambda s: _get(peak(fig.points_of(s)), "output_tps")  # noqa: E731
    for s in report.series:
        points = fig.points_of(s)
        p, low, good = peak(points), lowest(points), peak(points, "goodput_output_tps")
        errors = sum(int(x["errors"]) for x in fig.steps_of(s))
        t.rows.append([s.label, s.instance_type, _get(p, "output_tps"), load(p),
                       _range(p, "output_tps"), _get(p, "steady_output_tps"), _get(p, "total_tps"), _get(p, "rps"),
                       _get(low, "output_tps"),
                       _get(good, "goodput_output_tps"), _get(good, "goodput_rps"), errors,
                       _vs(report, s, metric), _marks(report, s.label, (checks.THROUGHPUT,), p)])
    return t


def _scaling(report: Report) -> Table:
    fig = report.figures
    t = Table("scaling", "4. Concurrency scaling, and every sweep point",
              [Column("Scenario"), Column("Load"), Column("output tok/s", TPS),
               Column("across repetitions"), Column("steady output tok/s", TPS), Column("total tok/s", TPS),
               Column("req/s", RPS), Column("mean in flight", NUM),
               Column("time at full concurrency", PCT), Column("TTFT p50", MS), Column("TPOT p50", MS),
               Column("E2E p50", MS), Column("goodput output tok/s", TPS), Column("scaling", RATIO),
               Column("steady scaling", RATIO), Column("vs baseline", REL), Column("checks")],
              caption="Median of the repetitions at each sweep point (mode, concurrency, rate). mean in flight = "
                      "Σ E2E ÷ step wall time (a closed step at concurrency C reads C only if it ran at full "
                      "concurrency throughout; below it the ramp and drain weigh); time at full concurrency = share "
                      "of the step's wall time with all its streams in flight (closed loop). output tok/s and req/s are "
                      f"over the whole step; {STEADY_TEXT} scaling = output tok/s ÷ output tok/s at the sweep's lowest "
                      "closed-loop concurrency, steady scaling the same with the steady figures (closed-loop points "
                      "only); vs baseline compares output tok/s at the same point.")
    base = next(s for s in report.series if s.label == report.baseline)
    base_at = {Point.of(p): _get(p, "output_tps") for p in fig.points_of(base)}
    for s in report.series:
        points = fig.points_of(s)
        first = lowest([p for p in points if not Point.of(p).open_loop])
        for p in points:
            tps = _get(p, "output_tps")
            closed = not Point.of(p).open_loop
            t.rows.append([s.label, load(p), tps, _range(p, "output_tps"), _get(p, "steady_output_tps"),
                           _get(p, "total_tps"), _get(p, "rps"), _get(p, "mean_in_flight"),
                           _pct_of(_get(p, "full_concurrency_share")),
                           _q(p, "ttft_ms", 0), _q(p, "tpot_ms", 0), _q(p, "e2e_ms", 0),
                           _get(p, "goodput_output_tps"),
                           _ratio(tps, _get(first, "output_tps")) if closed else None,
                           _ratio(_get(p, "steady_output_tps"), _get(first, "steady_output_tps")) if closed else None,
                           relative(tps, base_at.get(Point.of(p))) if report.compared(s) else None,
                           _marks(report, s.label, (checks.SCALING, checks.THROUGHPUT), p)])
    return t


def _server(report: Report) -> Table:
    fig = report.figures
    t = Table("server", "4c. Server beside client (vLLM's own /metrics over the same steps)",
              [Column("Scenario"), Column("Load"), Column("client output tokens", INT),
               Column("server output tokens", INT), Column("server ÷ client", RATIO), Column("client TTFT mean", MS),
               Column("server TTFT mean", MS), Column("client − server TTFT", MS), Column("client ÷ server TTFT", RATIO),
               Column("prefix-cache hit rate", PCT), Column(checks.TOKENS_CHECK), Column(checks.TTFT_CHECK)],
              caption="Server figures are deltas of vLLM's counters between the start and end of each step, summed "
                      "over the point's steps (TTFT: its histogram's sum ÷ count). prefix-cache hit rate = prompt "
                      "tokens found in the cache ÷ looked up (median of the repetitions). Each check reads passed, "
                      "warned, or not possible with the reason (a target without vLLM /metrics has no server "
                      "figures). Client TTFT may exceed the server's by 20 ms or 25 %, whichever is more.")
    for s in report.series:
        steps = fig.steps_of(s)
        for p in fig.points_of(s):
            f = point_figures(s.label, p, steps)
            outcomes = checks.server_outcomes(f)
            hit = _get(p, "prefix_cache_hit_rate")
            client, server = f.ttft_mean_ms, f.server_ttft_mean_ms
            gap = client - server if client is not None and server is not None else None
            t.rows.append([s.label, load(p), f.client_tokens, f.server_tokens, _ratio(f.server_tokens, f.client_tokens),
                           client, server, gap, _ratio(client, server), _pct_of(hit),
                           *(f"{state}: {why}" for state, why in (outcomes[checks.TOKENS_CHECK],
                                                                   outcomes[checks.TTFT_CHECK]))])
    return t


def _offered_load(report: Report) -> Table:
    fig = report.figures
    t = Table("load", "4b. Latency versus offered load (open-loop rate steps)",
              [Column("Scenario"), Column("Load"), Column("offered req/s", RPS), Column("sent req/s", RPS),
               Column("completed req/s", RPS), Column("dispatch delay mean", MS), Column("dispatch delay p99", MS),
               Column("mean in flight", NUM), Column("TTFT p50", MS), Column("TTFT p99", MS),
               Column("E2E p50", MS), Column("E2E p99", MS), Column("output tok/s", TPS), Column("errors", INT),
               Column("checks")],
              caption="Open-loop points (Poisson or constant arrivals at the offered rate, with the cap on requests "
                      "in flight if any), median of the repetitions. sent = (requests − 1) ÷ (last send − first "
                      "send); completed = successful requests ÷ step wall time; dispatch delay = send time − "
                      "scheduled time (exact p99 over the step's requests): above a few ms without a cap the client "
                      "sent late, with a cap the requests waited for a free slot.")
    for s in report.series:
        for p in fig.points_of(s):
            point = Point.of(p)
            if not point.open_loop:
                continue
            t.rows.append([s.label, point.label(), point.rate_rps or None, _get(p, "sent_rps"), _get(p, "rps"),
                           _get(p, "dispatch_mean_ms"), _get(p, "dispatch_p99_ms"), _get(p, "mean_in_flight"),
                           _q(p, "ttft_ms", 0), _q(p, "ttft_ms", 3), _q(p, "e2e_ms", 0), _q(p, "e2e_ms", 3),
                           _get(p, "output_tps"), _get(p, "errors"),
                           _marks(report, s.label, (checks.THROUGHPUT, checks.SCALING), p)])
    if not t.rows:
        t.caption = "No open-loop (rate) steps in these runs. " + t.caption
    return t


def _costs(store: Store, series: list[Series], figures: Figures, options: Options) -> list[Cost]:
    out = []
    for s in series:
        points = figures.points_of(s)
        if not s.instance_type:
            out.append(Cost(s, None, peak(points), peak(points, "goodput_output_tps"),
                            "the node reported no instance type (run the agent with --instance-type)"))
            continue
        try:  # one unpriced type must not cost the reader every other row: its row says what is missing
            price = price_for(store, s.instance_type, options.region, options.price_kind)
        except PriceMissing as exc:
            log.warning("%s: %s", s.label, exc)
            out.append(Cost(s, None, peak(points), peak(points, "goodput_output_tps"), f"no price: {exc}"))
            continue
        out.append(Cost(s, price, peak(points), peak(points, "goodput_output_tps")))
    return out


def cost_figures(c: Cost) -> dict[str, float | None]:
    hourly = c.price.usd_per_hour if c.price else None
    def per_m(point, metric):
        return usd_per_million(hourly, _get(point, metric)) if hourly else None
    return {
        "usd_per_hour": hourly,
        "peak_output_tps": _get(c.peak, "output_tps"), "peak_total_tps": _get(c.peak, "total_tps"),
        "usd_per_m_output_at_peak": per_m(c.peak, "output_tps"), "usd_per_m_total_at_peak": per_m(c.peak, "total_tps"),
        "goodput_output_tps": _get(c.goodput, "goodput_output_tps"),
        "goodput_total_tps": _get(c.goodput, "goodput_total_tps"),
        "usd_per_m_output_at_goodput": per_m(c.goodput, "goodput_output_tps"),
        "usd_per_m_total_at_goodput": per_m(c.goodput, "goodput_total_tps"),
    }


def _cost(report: Report) -> Table:
    t = Table("cost", f"5. Cost per 1M tokens ({report.price_kind}, {report.region})",
              [Column("Scenario"), Column("Instance"), Column("USD/h", USD), Column("peak output tok/s", TPS),
               Column("$/1M output @ peak", USD), Column("$/1M total @ peak", USD),
               Column("goodput output tok/s", TPS), Column("$/1M output @ goodput", USD),
               Column("$/1M total @ goodput", USD), Column("vs baseline", REL), Column("price row used")],
              caption=f"{COST_FORMULA}. @ peak: the sweep's highest median output (or total) tok/s; @ goodput: the "
                      f"highest goodput under the SLOs ({report.slo.describe()}). vs baseline compares $/1M output "
                      "@ peak. Prices are list prices with their date and source; refresh them before publishing.")
    rows = {c.series.label: cost_figures(c) for c in report.costs}
    base = rows.get(report.baseline, {}).get("usd_per_m_output_at_peak")
    for c in report.costs:
        f = rows[c.series.label]
        used = c.price.describe() if c.price else c.note
        t.rows.append([c.series.label, c.series.instance_type, f["usd_per_hour"], f["peak_output_tps"],
                       f["usd_per_m_output_at_peak"], f["usd_per_m_total_at_peak"], f["goodput_output_tps"],
                       f["usd_per_m_output_at_goodput"], f["usd_per_m_total_at_goodput"],
                       relative(f["usd_per_m_output_at_peak"], base) if report.compared(c.series) else None, used])
    return t


def _devices(report: Report) -> Table:
    fig = report.figures
    t = Table("devices", "6. Devices: utilisation, memory, power and energy per output token",
              [Column("Scenario"), Column("Load"), Column("devices", INT), Column("util mean", PCT),
               Column("util p50", PCT), Column("util p90", PCT), Column("peak memory", GB),
               Column("mean power", WATT), Column("energy", JOULE), Column("J/output token", JOULE),
               Column("energy from"), Column("host CPU", PCT)],
              caption="Samples taken during each step (median of the repetitions). Utilisation: NVML gpu_util_pct; "
                      "Neuron: NeuronCore utilisation (nc* devices) only, pooled over the node's devices. Peak memory: "
                      "sum of each device's peak. Energy: NVML energy counter at the step's end minus at its start (read "
                      "at both, interpolated to the instant), else mean power × step time (integrated power); Neuron "
                      "devices report no power, so no "
                      "energy is stated for them. J/output token = node energy ÷ output tokens of the step.")
    for s in report.series:
        for p in fig.points_of(s):
            n = fig.node_of(s, Point.of(p))
            if n is None:
                continue
            util = n.get("util_pct") or [None, None]
            t.rows.append([s.label, load(p), n.get("devices"), _num(n.get("util_mean_pct")), _num(util[0]),
                           _num(util[1]), _gb(n.get("mem_peak_bytes")), _num(n.get("power_mean_w")),
                           _num(n.get("energy_j")), _num(n.get("j_per_output_token")), n.get("energy_method") or "",
                           _num(n.get("host_cpu_mean_pct"))])
    if not t.rows:
        t.caption = "No device samples were taken during the steps of these runs. " + t.caption
    return t


def _device_detail(report: Report) -> Table:
    fig = report.figures
    t = Table("device_detail", "7. Devices per step: each device and the node",
              [Column("Scenario"), Column("Load"), Column("device"), Column("util mean", PCT),
               Column("util p50", PCT), Column("util p90", PCT), Column("peak memory", GB),
               Column("mean power", WATT), Column("energy", JOULE), Column("J/output token", JOULE),
               Column("energy from")],
              caption="Per step of the sweep (median of its repetitions), the samples each device took during the "
                      "step: utilisation mean, p50 and p90 (NVML gpu_util_pct; NeuronCore utilisation), peak memory, "
                      "mean power, energy over the step and that energy ÷ the step's output tokens. energy from: "
                      "'energy counter' = NVML cumulative counter at the step's end − at its start (each interpolated "
                      "between the readings either side); 'energy counter (rate inside the step)' = the counter's "
                      "rate between readings inside the step × step time; 'integrated power' = mean power × "
                      "step time (GPUs without the counter); 'none' = no power reading (Neuron reports none, so none is "
                      "stated). The node row pools every accelerator's samples and sums memory, power and energy.")
    for s in report.series:
        for p in fig.points_of(s):
            c, point = load(p), Point.of(p)
            for d in fig.devices_of(s, point):
                util = d.get("util_pct") or [None, None]
                t.rows.append([s.label, c, device_name(d["source"], d["device"]), _num(d.get("util_mean_pct")),
                               _num(util[0]), _num(util[1]), _gb(d.get("mem_peak_bytes")),
                               _num(d.get("power_mean_w")), _num(d.get("energy_j")),
                               _num(d.get("j_per_output_token")), d.get("energy_method") or ""])
            n = fig.node_of(s, point)
            if n is not None:
                util = n.get("util_pct") or [None, None]
                t.rows.append([s.label, c, "node", _num(n.get("util_mean_pct")), _num(util[0]), _num(util[1]),
                               _gb(n.get("mem_peak_bytes")), _num(n.get("power_mean_w")), _num(n.get("energy_j")),
                               _num(n.get("j_per_output_token")), n.get("energy_method") or ""])
    if not t.rows:
        t.caption = "No device samples were taken during the steps of these runs. " + t.caption
    return t


_DEVICE_PREFIXES = {("nvml", ""): "GPU ", ("neuron", "nc"): "NeuronCore ", ("neuron", "nd"): "Neuron device "}


def device_name(source: str, device: str) -> str:
    """'GPU 0', 'NeuronCore 3', 'Neuron device 1'; other devices as '<source> <device>'."""
    prefix = device.rstrip("0123456789")
    name = _DEVICE_PREFIXES.get((source, prefix))
    return f"{name}{device[len(prefix):]}" if name else f"{source} {device}"


def _gb(value) -> float | None:
    v = _num(value)
    return None if v is None else v / 1e9


def _steps(report: Report) -> Table:
    t = Table("steps", "Appendix: every step",
              [Column("Scenario"), Column("step", INT), Column("load"), Column("repetition", INT),
               Column("requests", INT), Column("errors", INT), Column("TTFT p50", MS), Column("TTFT p90", MS),
               Column("TTFT p95", MS), Column("TTFT p99", MS), Column("chunk-ITL p50", MS), Column("chunk-ITL p99", MS),
               Column("ITL/token p50", MS), Column("ITL/token p99", MS), Column("TPOT p50", MS), Column("TPOT p99", MS),
               Column("E2E p50", MS), Column("E2E p99", MS), Column("output tok/s", TPS),
               Column("steady output tok/s", TPS), Column("time at full concurrency", PCT), Column("total tok/s", TPS),
               Column("req/s", RPS), Column("goodput req/s", RPS), Column("agent CPU", PCT),
               Column("loop lag p99", MS), Column("dispatch delay p99", MS), Column("prefix-cache hit rate", PCT),
               Column("flags")],
              caption="Percentiles p50/p90/p95/p99 over the step's successful requests (ITL: over all gaps), "
                      f"{PERCENTILE_METHOD}. output tok/s over the whole step; {STEADY_TEXT} agent CPU (% of one core), loop lag and dispatch delay are the "
                      "agent's own; flags: 'client saturated' (the agent may have limited the load, with why) "
                      "or 'partial' (no end record: the run stopped inside the step).")
    for s in report.series:
        for p in report.figures.steps_of(s):
            node = report.figures.node_of(s, Point.of(p)) or {}
            flags = ([f"client saturated: {step_flag(p, _num(node.get('host_cpu_mean_pct')))}"]
                     if p.get("client_saturated") else []) + ([] if p.get("has_step") else ["partial"])
            t.rows.append([s.label, p["step"], load(p), p["repetition"], p["requests"], p["errors"],
                           _q(p, "ttft_ms", 0), _q(p, "ttft_ms", 1), _q(p, "ttft_ms", 2), _q(p, "ttft_ms", 3),
                           _q(p, "itl_ms", 0), _q(p, "itl_ms", 3), _q(p, "itl_token_ms", 0), _q(p, "itl_token_ms", 3),
                           _q(p, "tpot_ms", 0), _q(p, "tpot_ms", 3), _q(p, "e2e_ms", 0), _q(p, "e2e_ms", 3),
                           _get(p, "output_tps"), _get(p, "steady_output_tps"),
                           _pct_of(_get(p, "full_concurrency_share")), _get(p, "total_tps"), _get(p, "rps"),
                           _get(p, "goodput_rps"),
                           _get(p, "agent_cpu_pct"), _get(p, "loop_lag_p99_ms"), _get(p, "dispatch_p99_ms"),
                           _pct_of(_get(p, "prefix_cache_hit_rate")),
                           "; ".join(flags)])
    return t


STEADY_TEXT = ("steady output tok/s is over the step's steady part, from the first instant all its streams were "
               "in flight to the last (closed loop; its ramp and drain left out): output tokens whose chunks "
               "arrived in it ÷ its length.")

PERCENTILE_METHOD = ("exact: the value at 0-based rank ⌊q·n⌋ of the n sorted values, no interpolation, no "
                     "sampling (ClickHouse quantileExact; the agent's console and the fleet report use the same)")

DEFINITIONS = (
    f"Percentiles (TTFT, ITL, TPOT, E2E; p50/p90/p95/p99): {PERCENTILE_METHOD}.",
    "TTFT: send → first content-bearing chunk (a role-only chunk does not count).",
    "chunk-ITL: gap between consecutive content-bearing chunks; ITL/token: that gap ÷ the tokens the chunk carried.",
    "TPOT: (E2E − TTFT) ÷ (output tokens − 1) per request with more than one output token.",
    "E2E: send → last byte of the stream.",
    "Throughput: output tokens ÷ step wall time (first request start → last request end, warm-up excluded); "
    "total tok/s adds prompt tokens; req/s counts successful requests. The agent's console states the same "
    "figure for each step.",
    f"Steady throughput (closed loop): {STEADY_TEXT} Little's law (as steady output tok/s against concurrency "
    "÷ mean E2E × output tokens per request), the token bound and the concurrency-1 bound check the steady "
    "figure where the steady part spans at least two mean E2Es (a shorter one is a single round, which reads "
    "low), the whole-step figures otherwise; peak, goodput and cost use the whole-step figures.",
    "Goodput: the same, counting only requests that met every SLO given (TPOT of a one-token request counts as 0).",
    f"Cost: {COST_FORMULA}, for a named throughput (peak of the sweep, or goodput under SLO).",
    "Energy per token: device energy over the step ÷ output tokens of the step. The energy comes from the NVML "
    "energy counter read at the step's start and end, else from mean power × step time; Neuron devices report no "
    "power, so no "
    "energy is stated for them (each table names the method used).",
    "Repetitions: every figure is the median of the repetitions of its step; ranges show min–max.",
    "Workload: the plan each agent stored with its run (endpoint, prompt and output tokens, prompt source, "
    "steps, warm-up, repetitions); 'vs baseline' is computed only between runs that sent the same requests, "
    "unless --allow-mixed-workloads.",
    "Sweep point: (mode, concurrency, rate) as the agent's steps table states it — 'concurrency 8' (closed loop: "
    "8 requests always in flight), 'poisson 4 req/s' (open loop, no cap), 'constant 8 req/s, cap 16'. Only "
    "repetitions of the same point are summarised together.",
    "Checks per mode: Little's law compares req/s with concurrency ÷ mean E2E (closed loop), the offered rate "
    "(open loop), or the lower of the offered rate and cap ÷ mean E2E (capped); the token bound uses the "
    "concurrency (closed) or the measured mean in flight (open).",
    "Client saturated: the agent's CPU ≥ 90% of a core, its event-loop lag p99 ≥ 5 ms, or (open loop without a "
    "cap) dispatch delay p99 ≥ 5 ms; such a step's figures may show the client's limit, not the server's.",
)
