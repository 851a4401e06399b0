"""The device tables (per node and per device at each sweep point) and the appendix of every step,
declared as the other tables are (tables.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from siliconbench.collector.figures import DeviceRow, NodeRow, StepRow
from siliconbench.collector.reports.definitions import PERCENTILE_METHOD, STEADY_TEXT
from siliconbench.collector.reports.findings import step_verdict
from siliconbench.collector.reports.picks import load, pct_of, q
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import GB, INT, JOULE, MS, PCT, RPS, TEXT, TPS, WATT, Declared, Table, cell
from siliconbench.core.verdict import CLIENT_LIMITED, OK
from siliconbench.collector.rollups import Series

_DEVICE_PREFIXES = {("nvml", ""): "GPU ", ("neuron", "nc"): "NeuronCore ", ("neuron", "nd"): "Neuron device "}


def device_name(source: str, device: str) -> str:
    """'GPU 0', 'NeuronCore 3', 'Neuron device 1'; other devices as '<source> <device>'."""
    prefix = device.rstrip("0123456789")
    name = _DEVICE_PREFIXES.get((source, prefix))
    return f"{name}{device[len(prefix):]}" if name else f"{source} {device}"


def _gb(value: float | None) -> float | None:
    return None if value is None else value / 1e9


@dataclass(frozen=True, slots=True)
class OnDevice:
    """One row's source: a device (or the node, pooling its devices) of a series at a sweep point."""

    series: Series
    load: str
    name: str
    figures: DeviceRow | NodeRow


def _node(d: OnDevice) -> NodeRow:
    assert isinstance(d.figures, NodeRow), "the devices table has one row per node"
    return d.figures


_EACH_DEVICE = (
    cell("util mean", PCT, lambda d: d.figures.util_mean_pct),
    cell("util p50", PCT, lambda d: q(d.figures.util_pct).p50),
    cell("util p90", PCT, lambda d: q(d.figures.util_pct).p90),
    cell("peak memory", GB, lambda d: _gb(d.figures.mem_peak_bytes)),
    cell("mean power", WATT, lambda d: d.figures.power_mean_w),
    cell("energy", JOULE, lambda d: d.figures.energy_j),
    cell("J/output token", JOULE, lambda d: d.figures.j_per_output_token),
    cell("energy from", TEXT, lambda d: d.figures.energy_method or ""),
)

_NONE_SAMPLED = "No device samples were taken during the steps of these runs. "

DEVICES = Declared("devices", "6. Devices: utilisation, memory, power and energy per output token", (
    cell("Scenario", TEXT, lambda d: d.series.label),
    cell("Load", TEXT, lambda d: d.load),
    cell("devices", INT, lambda d: _node(d).devices),
    *_EACH_DEVICE,
    cell("host CPU", PCT, lambda d: _node(d).host_cpu_mean_pct),
), empty=_NONE_SAMPLED)
DEVICES_CAPTION = ("Samples taken during each step (median of the repetitions). Utilisation: NVML gpu_util_pct; "
                   "Neuron: NeuronCore utilisation (nc* devices) only, pooled over the node's devices. Peak memory: "
                   "sum of each device's peak. Energy: NVML energy counter at the step's end minus at its start (read "
                   "at both, interpolated to the instant), else mean power × step time (integrated power); Neuron "
                   "devices report no power, so no "
                   "energy is stated for them. J/output token = node energy ÷ output tokens of the step.")

DEVICE_DETAIL = Declared("device_detail", "7. Devices per step: each device and the node", (
    cell("Scenario", TEXT, lambda d: d.series.label),
    cell("Load", TEXT, lambda d: d.load),
    cell("device", TEXT, lambda d: d.name),
    *_EACH_DEVICE,
), empty=_NONE_SAMPLED)
DEVICE_DETAIL_CAPTION = (
    "Per step of the sweep (median of its repetitions), the samples each device took during the "
    "step: utilisation mean, p50 and p90 (NVML gpu_util_pct; NeuronCore utilisation), peak memory, "
    "mean power, energy over the step and that energy ÷ the step's output tokens. energy from: "
    "'energy counter' = NVML cumulative counter at the step's end − at its start (each interpolated "
    "between the readings either side); 'energy counter (rate inside the step)' = the counter's "
    "rate between readings inside the step × step time; 'integrated power' = mean power × "
    "step time (GPUs without the counter); 'none' = no power reading (Neuron reports none, so none is "
    "stated). The node row pools every accelerator's samples and sums memory, power and energy.")


def _nodes(report: Report) -> Iterable[OnDevice]:
    for s in report.series:
        for p in report.figures.points_of(s):
            n = report.figures.node_of(s, p.point)
            if n is not None:
                yield OnDevice(s, load(p) or "", "node", n)


def _each_device(report: Report) -> Iterable[OnDevice]:
    fig = report.figures
    for s in report.series:
        for p in fig.points_of(s):
            at = load(p) or ""
            yield from (OnDevice(s, at, device_name(d.source, d.device), d) for d in fig.devices_of(s, p.point))
            n = fig.node_of(s, p.point)
            if n is not None:
                yield OnDevice(s, at, "node", n)


@dataclass(frozen=True, slots=True)
class OfStep:
    """One row's source: a step of a series."""

    report: Report
    series: Series
    step: StepRow

    def flags(self) -> str:
        """The step's marks; the reasons are in the report's steps flagged, once per point (folded.py)."""
        st = self.step
        verdict, _ = step_verdict(st)
        return "; ".join(([f"{'⚠' if verdict == CLIENT_LIMITED else 'ℹ'} {verdict}"] if verdict != OK else []) + ([] if st.has_step else ["partial"]))


STEPS = Declared("steps", "Appendix: every step", (
    cell("Scenario", TEXT, lambda r: r.series.label),
    cell("step", INT, lambda r: r.step.step),
    cell("load", TEXT, lambda r: r.step.point.label()),
    cell("repetition", INT, lambda r: r.step.repetition),
    cell("requests", INT, lambda r: r.step.requests),
    cell("errors", INT, lambda r: r.step.errors),
    cell("TTFT p50", MS, lambda r: q(r.step.ttft_ms).p50),
    cell("TTFT p90", MS, lambda r: q(r.step.ttft_ms).p90),
    cell("TTFT p95", MS, lambda r: q(r.step.ttft_ms).p95),
    cell("TTFT p99", MS, lambda r: q(r.step.ttft_ms).p99),
    cell("chunk-ITL p50", MS, lambda r: q(r.step.itl_ms).p50),
    cell("chunk-ITL p99", MS, lambda r: q(r.step.itl_ms).p99),
    cell("ITL/token p50", MS, lambda r: q(r.step.itl_token_ms).p50),
    cell("ITL/token p99", MS, lambda r: q(r.step.itl_token_ms).p99),
    cell("TPOT p50", MS, lambda r: q(r.step.tpot_ms).p50),
    cell("TPOT p99", MS, lambda r: q(r.step.tpot_ms).p99),
    cell("E2E p50", MS, lambda r: q(r.step.e2e_ms).p50),
    cell("E2E p99", MS, lambda r: q(r.step.e2e_ms).p99),
    cell("output tok/s", TPS, lambda r: r.step.output_tps),
    cell("steady output tok/s", TPS, lambda r: r.step.steady_output_tps),
    cell("time at full concurrency", PCT, lambda r: pct_of(r.step.full_concurrency_share)),
    cell("total tok/s", TPS, lambda r: r.step.total_tps),
    cell("req/s", RPS, lambda r: r.step.rps),
    cell("goodput req/s", RPS, lambda r: r.step.goodput_rps),
    cell("agent CPU", PCT, lambda r: r.step.agent_cpu_pct),
    cell("loop lag p99", MS, lambda r: r.step.loop_lag_p99_ms),
    cell("node CPU", PCT, lambda r: r.step.node_cpu_pct if r.step.verdict else None),
    cell("server CPU", PCT, lambda r: r.step.server_cpu_pct),
    cell("ended early", INT, lambda r: r.step.ended_early),
    cell("dispatch delay p99", MS, lambda r: r.step.dispatch_p99_ms),
    cell("prefix-cache hit rate", PCT, lambda r: pct_of(r.step.prefix_cache_hit_rate)),
    cell("flags", TEXT, OfStep.flags),
))
STEPS_CAPTION = ("Percentiles p50/p90/p95/p99 over the step's successful requests (ITL: over all gaps), "
                 f"{PERCENTILE_METHOD}. output tok/s over the whole step; {STEADY_TEXT} agent CPU (the busiest sending "
                 "process, % of one core), loop lag and dispatch delay are the agent's own; node CPU is % of all "
                 "the node's cores, server CPU the target's processes on the node (% of one core); flags: the "
                 "step's verdict where not ok ('client-limited', 'node busy'; why: under steps flagged) or 'partial' (no end "
                 "record: the run stopped inside the step); ended early: successful requests that returned fewer "
                 "output tokens than they asked for.")


def device_tables(report: Report) -> list[Table]:
    """Devices per node, each device, then every step."""
    steps = (OfStep(report, s, st) for s in report.series for st in report.figures.steps_of(s))
    return [DEVICES.build(_nodes(report), DEVICES_CAPTION),
            DEVICE_DETAIL.build(_each_device(report), DEVICE_DETAIL_CAPTION),
            STEPS.build(steps, STEPS_CAPTION)]
