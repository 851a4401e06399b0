"""The report as data: the reference report's five tables (TTFT, ITL, throughput, concurrency scaling,
$/1M tokens), devices and per-step detail, each table with its formula and the findings of the
consistency checks beside its rows. Renderers (markdown, csv, json, html) only format this."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field

from siliconbench.collector import checks
from siliconbench.collector.checks import Finding, PointFigures
from siliconbench.collector.errors import InvalidOption, PriceMissing
from siliconbench.collector.lifecycle import lifecycle
from siliconbench.collector.prices import FORMULA as COST_FORMULA
from siliconbench.collector.prices import Price, price_for, usd_per_million
from siliconbench.collector.reports.spread import Spread, load_spread
from siliconbench.collector.rollups import Figures, Selection, Series, Slo, load_figures, select_series
from siliconbench.collector.store import Store

log = logging.getLogger(__name__)

# Column kinds tell renderers how to format a value; CSV/JSON keep the raw number.
TEXT, INT, MS, TPS, RPS, USD, PCT, JOULE, WATT, GB, RATIO, REL = (
    "text", "int", "ms", "tok/s", "req/s", "usd", "pct", "J", "W", "GB", "x", "rel")


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
    unfinished: dict[str, str] = field(default_factory=dict)  # run id -> lifecycle state, for runs not finished
    spread: Spread = field(default_factory=Spread)  # distributions and workloads, for the HTML charts

    @property
    def simulated(self) -> list[str]:
        return [s.label for s in self.series if s.simulated]

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


@dataclass(frozen=True, slots=True)
class Options:
    slo: Slo = Slo()
    baseline: str | None = None
    region: str = "us-east-1"
    price_kind: str = "on_demand"
    cost: bool = True


def build_report(store: Store, selection: Selection, options: Options) -> Report:
    series = select_series(store, selection)
    baseline = _baseline(series, options.baseline)
    figures = load_figures(store, series, options.slo)
    costs = _costs(store, series, figures, options) if options.cost else []
    findings = [f for s in series for f in _point_findings(s, figures)]
    title = (f"siliconbench run {series[0].run_id}" if len({s.run_id for s in series}) == 1
             else f"siliconbench report: {selection.describe()}")
    report = Report(title=title, generated_at=dt.datetime.now(dt.timezone.utc), store=store.location.shown,
                    selection=selection, slo=options.slo, baseline=baseline.label, region=options.region,
                    price_kind=options.price_kind, series=series, figures=figures, tables=[], findings=findings,
                    costs=costs, unfinished=_unfinished(store, series), spread=load_spread(store, series))
    report.tables = [_ttft(report), _itl(report), _throughput(report), _scaling(report)]
    if options.cost:
        report.tables.append(_cost(report))
    report.tables += [_devices(report), _device_detail(report), _steps(report)]
    for table in report.tables:
        table.findings = [f for f in findings if f.figure == table.key]
    return report


def _unfinished(store: Store, series: list[Series]) -> dict[str, str]:
    states = {run_id: lifecycle(store, run_id).state for run_id in sorted({s.run_id for s in series})}
    return {run_id: state for run_id, state in states.items() if state != "finished"}


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
    return min(points, key=lambda p: p["concurrency"], default=None)


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


def _marks(findings: list[Finding], label: str, figure: str, concurrency: int | None = None) -> str:
    found = [f.short() for f in findings
             if f.subject == label and f.figure == figure and (concurrency is None or f.concurrency == concurrency)]
    return "; ".join(dict.fromkeys(found))


# ---- checks ------------------------------------------------------------------------------------------

def point_figures(label: str, point: dict, steps: list[dict]) -> PointFigures:
    mine = [s for s in steps if s["step"] in set(point.get("steps") or [])]
    served = [s for s in mine if s.get("has_server_tokens")]
    ttfts = [t for s in mine if (t := _num(s.get("server_ttft_mean_ms"))) is not None]
    return PointFigures(
        subject=label, concurrency=point["concurrency"], output_tps=_get(point, "output_tps"), rps=_get(point, "rps"),
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
    return [f for p in figures.points_of(s) for f in checks.check_point(point_figures(s.label, p, steps))]


# ---- the tables ---------------------------------------------------------------------------------------

def _vs(report: Report, metric, value: float | None) -> float | None:
    base = next(s for s in report.series if s.label == report.baseline)
    return relative(value, metric(base))


def _ttft(report: Report) -> Table:
    fig = report.figures
    t = Table("ttft", "1. Time to first token (TTFT), at the lowest concurrency of each sweep",
              [Column("Scenario"), Column("Instance"), Column("Concurrency", INT), Column("TTFT p50", MS),
               Column("p90", MS), Column("p99", MS), Column("mean", MS), Column("p50 across repetitions"),
               Column("vs baseline", REL), Column("checks")],
              caption="TTFT = send → first content-bearing chunk, per successful request; percentiles over the "
                      "step's requests, then the median of the repetitions. vs baseline compares p50.")
    metric = lambda s: _q(lowest(fig.points_of(s)), "ttft_ms", 0)  # noqa: E731
    for s in report.series:
        p = lowest(fig.points_of(s))
        t.rows.append([s.label, s.instance_type, _get(p, "concurrency"), _q(p, "ttft_ms", 0), _q(p, "ttft_ms", 1),
                       _q(p, "ttft_ms", 3), _get(p, "ttft_mean_ms"), _range(p, "ttft_ms", 0),
                       _vs(report, metric, metric(s)), _marks(report.findings, s.label, checks.TTFT)])
    return t


def _itl(report: Report) -> Table:
    fig = report.figures
    t = Table("itl", "2. Inter-token latency (ITL) and TPOT, at the lowest concurrency of each sweep",
              [Column("Scenario"), Column("Instance"), Column("Concurrency", INT), Column("ITL/token p50", MS),
               Column("ITL/token p90", MS), Column("ITL/token p99", MS), Column("chunk-ITL p50", MS),
               Column("tokens/chunk", RATIO), Column("TPOT p50", MS), Column("TPOT mean", MS),
               Column("vs baseline", REL), Column("checks")],
              caption="chunk-ITL = gap between consecutive content chunks; ITL/token = gap ÷ tokens in the chunk; "
                      "TPOT = (E2E − TTFT) ÷ (output tokens − 1). vs baseline compares ITL/token p50.")
    metric = lambda s: _q(lowest(fig.points_of(s)), "itl_token_ms", 0)  # noqa: E731
    for s in report.series:
        p = lowest(fig.points_of(s))
        t.rows.append([s.label, s.instance_type, _get(p, "concurrency"), _q(p, "itl_token_ms", 0),
                       _q(p, "itl_token_ms", 1), _q(p, "itl_token_ms", 3), _q(p, "itl_ms", 0),
                       _get(p, "tokens_per_chunk"), _q(p, "tpot_ms", 0), _get(p, "tpot_mean_ms"),
                       _vs(report, metric, metric(s)), _marks(report.findings, s.label, checks.ITL)])
    return t


def _throughput(report: Report) -> Table:
    fig = report.figures
    t = Table("throughput", "3. Throughput: peak of the sweep",
              [Column("Scenario"), Column("Instance"), Column("peak output tok/s", TPS), Column("at concurrency", INT),
               Column("across repetitions"), Column("total tok/s", TPS), Column("req/s", RPS),
               Column("output tok/s at lowest concurrency", TPS), Column("goodput output tok/s", TPS),
               Column("goodput req/s", RPS), Column("errors", INT), Column("vs baseline", REL), Column("checks")],
              caption="output tok/s = Σ output tokens (server usage) ÷ step wall time (first request start → last "
                      "request end); total tok/s counts prompt + output tokens; req/s counts successful requests. "
                      f"Goodput counts requests that met the SLOs ({report.slo.describe()}), best point of the sweep. "
                      "vs baseline compares peak output tok/s.")
    metric = lambda s: _get(peak(fig.points_of(s)), "output_tps")  # noqa: E731
    for s in report.series:
        points = fig.points_of(s)
        p, low, good = peak(points), lowest(points), peak(points, "goodput_output_tps")
        errors = sum(int(x["errors"]) for x in fig.steps_of(s))
        t.rows.append([s.label, s.instance_type, _get(p, "output_tps"), _get(p, "concurrency"),
                       _range(p, "output_tps"), _get(p, "total_tps"), _get(p, "rps"), _get(low, "output_tps"),
                       _get(good, "goodput_output_tps"), _get(good, "goodput_rps"), errors,
                       _vs(report, metric, metric(s)), _marks(report.findings, s.label, checks.THROUGHPUT)])
    return t


def _scaling(report: Report) -> Table:
    fig = report.figures
    t = Table("scaling", "4. Concurrency scaling",
              [Column("Scenario"), Column("Concurrency", INT), Column("output tok/s", TPS),
               Column("across repetitions"), Column("total tok/s", TPS), Column("req/s", RPS),
               Column("TTFT p50", MS), Column("TPOT p50", MS), Column("E2E p50", MS),
               Column("goodput output tok/s", TPS), Column("scaling", RATIO), Column("vs baseline", REL),
               Column("checks")],
              caption="Median of the repetitions at each concurrency. scaling = output tok/s ÷ output tok/s at the "
                      "sweep's lowest concurrency; vs baseline compares output tok/s at the same concurrency.")
    base = next(s for s in report.series if s.label == report.baseline)
    base_at = {p["concurrency"]: _get(p, "output_tps") for p in fig.points_of(base)}
    for s in report.series:
        points = fig.points_of(s)
        first = _get(lowest(points), "output_tps")
        for p in points:
            c = p["concurrency"]
            tps = _get(p, "output_tps")
            findings = [f for f in report.findings if f.concurrency == c]
            t.rows.append([s.label, c, tps, _range(p, "output_tps"), _get(p, "total_tps"), _get(p, "rps"),
                           _q(p, "ttft_ms", 0), _q(p, "tpot_ms", 0), _q(p, "e2e_ms", 0),
                           _get(p, "goodput_output_tps"), (tps / first) if tps and first else None,
                           relative(tps, base_at.get(c)),
                           "; ".join(dict.fromkeys(f.short() for f in findings if f.subject == s.label
                                                   and f.figure in (checks.SCALING, checks.THROUGHPUT)))])
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
                       relative(f["usd_per_m_output_at_peak"], base), used])
    return t


def _devices(report: Report) -> Table:
    fig = report.figures
    t = Table("devices", "6. Devices: utilisation, memory, power and energy per output token",
              [Column("Scenario"), Column("Concurrency", INT), Column("devices", INT), Column("util mean", PCT),
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
            n = fig.node_of(s, p["concurrency"])
            if n is None:
                continue
            util = n.get("util_pct") or [None, None]
            t.rows.append([s.label, p["concurrency"], n.get("devices"), _num(n.get("util_mean_pct")), _num(util[0]),
                           _num(util[1]), _gb(n.get("mem_peak_bytes")), _num(n.get("power_mean_w")),
                           _num(n.get("energy_j")), _num(n.get("j_per_output_token")), n.get("energy_method") or "",
                           _num(n.get("host_cpu_mean_pct"))])
    if not t.rows:
        t.caption = "No device samples were taken during the steps of these runs. " + t.caption
    return t


def _device_detail(report: Report) -> Table:
    fig = report.figures
    t = Table("device_detail", "7. Devices per step: each device and the node",
              [Column("Scenario"), Column("Concurrency", INT), Column("device"), Column("util mean", PCT),
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
            c = p["concurrency"]
            for d in fig.devices_of(s, c):
                util = d.get("util_pct") or [None, None]
                t.rows.append([s.label, c, device_name(d["source"], d["device"]), _num(d.get("util_mean_pct")),
                               _num(util[0]), _num(util[1]), _gb(d.get("mem_peak_bytes")),
                               _num(d.get("power_mean_w")), _num(d.get("energy_j")),
                               _num(d.get("j_per_output_token")), d.get("energy_method") or ""])
            n = fig.node_of(s, c)
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
              [Column("Scenario"), Column("step", INT), Column("concurrency", INT), Column("repetition", INT),
               Column("requests", INT), Column("errors", INT), Column("TTFT p50", MS), Column("TTFT p90", MS),
               Column("TTFT p95", MS), Column("TTFT p99", MS), Column("chunk-ITL p50", MS), Column("chunk-ITL p99", MS),
               Column("ITL/token p50", MS), Column("ITL/token p99", MS), Column("TPOT p50", MS), Column("TPOT p99", MS),
               Column("E2E p50", MS), Column("E2E p99", MS), Column("output tok/s", TPS), Column("total tok/s", TPS),
               Column("req/s", RPS), Column("goodput req/s", RPS)],
              caption="Percentiles p50/p90/p95/p99 over the step's successful requests (ITL: over all gaps), "
                      "computed in ClickHouse.")
    for s in report.series:
        for p in report.figures.steps_of(s):
            t.rows.append([s.label, p["step"], p["concurrency"], p["repetition"], p["requests"], p["errors"],
                           _q(p, "ttft_ms", 0), _q(p, "ttft_ms", 1), _q(p, "ttft_ms", 2), _q(p, "ttft_ms", 3),
                           _q(p, "itl_ms", 0), _q(p, "itl_ms", 3), _q(p, "itl_token_ms", 0), _q(p, "itl_token_ms", 3),
                           _q(p, "tpot_ms", 0), _q(p, "tpot_ms", 3), _q(p, "e2e_ms", 0), _q(p, "e2e_ms", 3),
                           _get(p, "output_tps"), _get(p, "total_tps"), _get(p, "rps"), _get(p, "goodput_rps")])
    return t


DEFINITIONS = (
    "TTFT: send → first content-bearing chunk (a role-only chunk does not count).",
    "chunk-ITL: gap between consecutive content-bearing chunks; ITL/token: that gap ÷ the tokens the chunk carried.",
    "TPOT: (E2E − TTFT) ÷ (output tokens − 1) per request with more than one output token.",
    "E2E: send → last byte of the stream.",
    "Throughput: output tokens ÷ step wall time (first request start → last request end, warm-up excluded); "
    "total tok/s adds prompt tokens; req/s counts successful requests.",
    "Goodput: the same, counting only requests that met every SLO given (TPOT of a one-token request counts as 0).",
    f"Cost: {COST_FORMULA}, for a named throughput (peak of the sweep, or goodput under SLO).",
    "Energy per token: device energy over the step ÷ output tokens of the step. The energy comes from the NVML "
    "energy counter read at the step's start and end, else from mean power × step time; Neuron devices report no "
    "power, so no "
    "energy is stated for them (each table names the method used).",
    "Repetitions: every figure is the median of the repetitions of its step; ranges show min–max.",
)
