"""Read the device check's sample files (scripts/device_sample.py) and say whether the NVML path held up.

    python scripts/device_analyse.py OUT/samples-idle.jsonl OUT/samples-load.jsonl

Prints, per phase and device: which fields the sampler read or reported unsupported (once); whether the
energy counter rose monotonically and whether its rate agrees with the mean power readings (within 10 %);
whether each poll carried one timestamp for all devices; the sampler's CPU cost; and the per-step device
figures a report would show, each phase taken as one step. Every check line starts PASS, FAIL or INFO.
Exit 0 when nothing failed, 1 when a check failed, 2 when the files cannot be read.

The step figures are computed here the way the collector's `device_rollups` view computes them (mean,
p50/p90 by rank, peak, mean power, energy from the counter's readings inside the step), so the device
machine needs no collector install. Where the collector is installed (chDB: the project's venv), the same
samples also go through the collector's own ingest (`tables_of`) into a throw-away chDB store, and the
report's `device_rollups` view states the figures; each must agree with the ones computed here.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from siliconbench.agent.selfmon import percentile

# What the sampler claims to read on Hopper (agent/samplers/nvml.py): (label, the sampler's field name in
# its "not supported" log line, the metrics that field yields).
HOPPER_FIELDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("utilisation (gpu, memory)", "utilization", ("gpu_util_pct", "mem_util_pct")),
    ("memory (used, total)", "memory", ("mem_used_bytes", "mem_total_bytes")),
    ("power", "power", ("power_w",)),
    ("energy counter", "energy", ("energy_mj",)),
    ("SM clock", "sm_clock", ("sm_clock_mhz",)),
    ("memory clock", "mem_clock", ("mem_clock_mhz",)),
    ("clock-event reasons", "clocks_event_reasons", ("clocks_event_reasons",)),
    ("temperature", "temperature", ("temperature_c",)),
    ("GPM SM activity", "gpm", ("sm_active_pct",)),
    ("GPM tensor activity", "gpm", ("tensor_active_pct",)),
    ("GPM DRAM activity", "gpm", ("dram_active_pct",)),
)
PERCENT_METRICS = ("gpu_util_pct", "mem_util_pct", "sm_active_pct", "tensor_active_pct", "dram_active_pct")
ENERGY_POWER_REL = 0.10     # issue 17: the counter's rate and the mean power agree within 10 %
CPU_LIMIT_PCT = 3.0         # issue 17: sampler overhead at 10 Hz under 3 % of one core
POLL_RATE_REL = 0.10        # polls per second within 10 % of the asked interval
SQL_AGREE_REL = 0.01        # the collector's figures against the ones computed here
RUN_ID, AGENT_ID = "device-check", "device-check-agent"


class Unreadable(Exception):
    """A sample file is missing or not what device_sample.py writes."""


@dataclass
class Phase:
    name: str
    meta: dict
    summary: dict
    samples: list[dict] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)

    @property
    def devices(self) -> list[str]:
        return [str(d["index"]) for d in self.meta["devices"]]

    def series(self, device: str, metric: str) -> list[tuple[int, float]]:
        return [(s["time_unix_ns"], s["values"][metric]) for s in self.samples
                if s["device"] == device and metric in s["values"]]

    def polls(self) -> dict[int, list[dict]]:
        by_poll: dict[int, list[dict]] = defaultdict(list)
        for s in self.samples:
            by_poll[s["poll"]].append(s)
        return dict(sorted(by_poll.items()))


def load(path: Path) -> Phase:
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as err:
        raise Unreadable(f"{path}: {err}") from None
    kinds: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        kinds[line.get("kind", "")].append(line)
    if len(kinds["meta"]) != 1 or len(kinds["summary"]) != 1:
        raise Unreadable(f"{path}: not a complete device_sample.py file (needs one meta and one summary line)")
    meta = kinds["meta"][0]
    return Phase(meta["phase"], meta, kinds["summary"][0], kinds["sample"], kinds["log"])


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, ok: bool, what: str) -> None:
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {what}")

    @staticmethod
    def info(what: str) -> None:
        print(f"INFO {what}")


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def _unsupported_logs(phase: Phase, device: str, field_name: str) -> int:
    # The sampler says so in one of two ways for GPM: at open (no GPM support) or at the first failed read.
    pattern = re.compile(rf"^nvml: GPU {device}: {re.escape(field_name)} not supported"
                         + (rf"|^nvml: GPU {device} \(.*\) has no GPM" if field_name == "gpm" else ""))
    return sum(1 for entry in phase.logs if pattern.search(entry["message"]))


def fields(phases: list[Phase], report: Report) -> None:
    print("\n== Fields the sampler claims for Hopper: read, or reported unsupported once ==")
    devices = phases[0].devices
    rows, problems, cells = [], [], 0
    for label, field_name, metrics in HOPPER_FIELDS:
        for metric in metrics:
            row = [label if metric == metrics[0] else "", metric]
            for phase in phases:
                for device in devices:
                    status, problem = _field_status(phase, device, field_name, metric)
                    row.append(status)
                    cells += 1
                    if problem:
                        problems.append(f"{phase.name}: GPU {device} {metric} {problem}")
            rows.append(row)
    for problem in problems:
        report.check(False, problem)
    if not problems:
        report.check(True, f"all {cells} (phase, device, metric) cells read in every poll or reported "
                           f"unsupported exactly once; percentages within 0-100")
    table(["field", "metric", *[f"{p.name} GPU {d}" for p in phases for d in devices]], rows)
    hopper = [d for d in phases[0].meta["devices"] if re.search(r"H100|H200|H800|H20\b|GH200", d["name"])]
    for d in hopper:
        if any(_unsupported_logs(p, str(d["index"]), "gpm") for p in phases):
            report.info(f"GPU {d['index']} is a Hopper GPU ({d['name']}) yet reported no GPM: the machine may hide "
                        f"profiling counters (a virtualised GPU); the sampler's log says 'pre-Hopper'")
    for phase in phases:
        for entry in phase.logs:
            if entry["level"] in ("WARNING", "ERROR"):
                report.info(f"{phase.name}: agent logged {entry['level']}: {entry['message']}")


def _field_status(phase: Phase, device: str, field_name: str, metric: str) -> tuple[str, str]:
    """The table cell, and what is wrong with it ("" when nothing is)."""
    polls = len(phase.polls())
    expected = polls - 1 if field_name == "gpm" else polls  # GPM needs two samples: none in the first poll
    values = [v for _, v in phase.series(device, metric)]
    logged = _unsupported_logs(phase, device, field_name)
    if values:
        problems = []
        if len(values) < expected:
            problems.append(f"read in only {len(values)} of {expected} polls")
        if logged:
            problems.append(f"read, yet logged unsupported {logged}x")
        if metric in PERCENT_METRICS and not all(0 <= v <= 100 for v in values):
            problems.append(f"outside 0-100 % (min {min(values):g}, max {max(values):g})")
        return f"read {len(values)}/{expected}", "; ".join(problems)
    if logged == 1:
        return "unsupported", ""
    return f"MISSING (logged {logged}x)", f"never read, and reported unsupported {logged}x (want exactly once)"


def energy(phases: list[Phase], report: Report) -> None:
    print("\n== Energy counter: monotonic, and its rate against the mean power (within 10 %) ==")
    rows = []
    for device in phases[0].devices:
        points = sorted(p for phase in phases for p in phase.series(device, "energy_mj"))
        if not points:
            report.info(f"GPU {device}: no energy counter readings (unsupported): nothing to check")
            continue
        drops = [(a, b) for a, b in zip(points, points[1:]) if b[1] < a[1]]
        report.check(not drops, f"GPU {device} energy counter monotonic over {len(points)} readings"
                     + (f": fell {len(drops)}x, first from {drops[0][0][1]:.0f} to {drops[0][1][1]:.0f} mJ"
                        if drops else ""))
        for phase in phases:
            rate, power = counter_rate_w(phase, device), mean(phase, device, "power_w")
            if rate is None or power is None or power <= 0:
                report.info(f"{phase.name}: GPU {device}: counter rate or power missing: no comparison")
                continue
            rel = (rate - power) / power
            report.check(abs(rel) <= ENERGY_POWER_REL, f"{phase.name}: GPU {device} counter rate {rate:.1f} W "
                         f"vs mean power {power:.1f} W: {100 * rel:+.1f} %")
            rows.append([phase.name, f"GPU {device}", f"{rate:.1f}", f"{power:.1f}", f"{100 * rel:+.1f}"])
    if rows:
        table(["phase", "device", "counter rate W", "mean power W", "difference %"], rows)


def counter_rate_w(phase: Phase, device: str) -> float | None:
    points = phase.series(device, "energy_mj")
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    (t0, e0), (t1, e1) = points[0], points[-1]
    return (e1 - e0) / 1e3 / ((t1 - t0) / 1e9)


def mean(phase: Phase, device: str, metric: str) -> float | None:
    values = [v for _, v in phase.series(device, metric)]
    return statistics.fmean(values) if values else None


def timestamps(phases: list[Phase], report: Report) -> None:
    print("\n== Polls: one timestamp per poll across devices ==")
    for phase in phases:
        polls = phase.polls()
        stamps = []
        split = 0
        for samples in polls.values():
            distinct = {s["time_unix_ns"] for s in samples}
            split += len(distinct) > 1
            stamps.append(min(distinct))
        report.check(split == 0, f"{phase.name}: {len(polls)} polls, {split} with more than one timestamp")
        report.check(all(b > a for a, b in zip(stamps, stamps[1:])), f"{phase.name}: poll timestamps strictly increase")
        gaps_ms = [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]
        interval_ms = phase.meta["interval_s"] * 1e3
        if gaps_ms:
            # The runner polls once more when stopped: that gap is short by design, so the median is judged.
            median_gap = statistics.median(gaps_ms)
            report.check(abs(median_gap - interval_ms) <= POLL_RATE_REL * interval_ms,
                         f"{phase.name}: median poll interval {median_gap:.1f} ms (asked {interval_ms:.0f} ms), "
                         f"p99 {percentile(gaps_ms, 0.99):.1f} ms, max {max(gaps_ms):.1f} ms")


def overhead(phases: list[Phase], report: Report) -> None:
    print("\n== Sampler overhead (process CPU time / wall time, % of one core) ==")
    rows = []
    for phase in phases:
        s = phase.summary
        cpu_pct = 100 * s["process_cpu_s"] / s["wall_s"]
        read_ms, read_cpu_ms = s["poll_wall_ms"], s["poll_cpu_ms"]
        report.check(cpu_pct < CPU_LIMIT_PCT, f"{phase.name}: {cpu_pct:.2f} % of a core at "
                     f"{1 / phase.meta['interval_s']:.0f} Hz (limit {CPU_LIMIT_PCT:.0f} %)")
        rows.append([phase.name, str(s["polls"]), f"{s['wall_s']:.1f}", f"{cpu_pct:.2f}",
                     f"{statistics.fmean(read_ms):.2f}" if read_ms else "-",
                     f"{percentile(read_ms, 0.99):.2f}" if read_ms else "-",
                     f"{statistics.fmean(read_cpu_ms):.2f}" if read_cpu_ms else "-"])
    table(["phase", "polls", "wall s", "process CPU %", "poll read ms mean", "p99", "poll CPU ms mean"], rows)


def step_figures(phases: list[Phase]) -> dict[tuple[str, str], dict[str, float | None]]:
    """Prints the table; returns {(phase, device): {"power_mean_w":..., "energy_j":..., ...}}."""
    print("\n== Device figures per step (each phase one step), as the report's device tables state them ==")
    rows = []
    figures: dict[tuple[str, str], dict[str, float | None]] = {}
    for phase in phases:
        stamps = [s["time_unix_ns"] for s in phase.samples]
        step_s = (max(stamps) - min(stamps)) / 1e9 if stamps else 0.0
        node_util: list[float] = []
        node_mem = node_power = node_energy = 0.0
        for device in phase.devices:
            util = [v for _, v in phase.series(device, "gpu_util_pct")]
            node_util += util
            mem = max((v for _, v in phase.series(device, "mem_used_bytes")), default=None)
            power = mean(phase, device, "power_w")
            rate = counter_rate_w(phase, device)
            energy_j, method = (rate * step_s, "energy counter") if rate is not None else (
                (power * step_s, "integrated power") if power is not None else (None, "none"))
            figures[(phase.name, device)] = {"util_mean_pct": statistics.fmean(util) if util else None,
                                             "mem_peak_bytes": mem, "power_mean_w": power, "energy_j": energy_j}
            node_mem += mem or 0
            node_power += power or 0
            node_energy += energy_j or 0
            rows.append([phase.name, f"GPU {device}", f"{step_s:.1f}", *_util(util), _num(mem, 1e9, 2),
                         _num(power), _num(energy_j), method, _num(mean(phase, device, "sm_active_pct")),
                         _num(mean(phase, device, "tensor_active_pct")), _num(mean(phase, device, "dram_active_pct")),
                         _num(mean(phase, device, "sm_clock_mhz"), 1, 0),
                         _num(max((v for _, v in phase.series(device, "temperature_c")), default=None), 1, 0)])
        rows.append([phase.name, "node", f"{step_s:.1f}", *_util(node_util), _num(node_mem, 1e9, 2),
                     _num(node_power), _num(node_energy), "", "", "", "", "", ""])
    table(["step", "device", "s", "util mean %", "p50", "p90", "peak mem GB", "mean power W", "energy J",
           "energy from", "SM active %", "tensor %", "DRAM %", "SM MHz", "temp max C"], rows)
    return figures


def collector_figures(phases: list[Phase], mine: dict[tuple[str, str], dict[str, float | None]],
                      report: Report) -> None:
    """The same steps through the collector's ingest and its `device_rollups` view, on chDB."""
    print("\n== The same steps through the collector: ingest (tables_of) and the device_rollups view, on chDB ==")
    try:
        from siliconbench.collector.ingest import tables_of
        from siliconbench.collector.store import Store
        from siliconbench.core.wire import pb
    except ImportError as err:
        report.info(f"the collector is not installed here ({err.name} missing): for its figures, run this analysis "
                    f"on the fetched files with the project's venv (docs/device-check.md)")
        return
    with tempfile.TemporaryDirectory(prefix="device-check-store-") as tmp:
        store = Store.open(f"chdb://{tmp}/store")
        try:
            for seq, batch in enumerate(_batches(phases, pb), start=1):
                batch.seq, batch.batch_id = seq, f"{RUN_ID}-{seq}"
                for destination, columns in tables_of(batch, AGENT_ID).items():
                    store.insert_arrow(destination, columns, batch.batch_id)
            rows = store.query(
                "SELECT step, device, util_mean_pct, mem_peak_bytes, power_mean_w, energy_j, energy_method "
                "FROM {db}.device_rollups WHERE run_id = {run:String} AND agent_id = {agent:String} "
                "ORDER BY step, device", {"run": RUN_ID, "agent": AGENT_ID}).result_rows
        finally:
            store.close()
    names = ("util_mean_pct", "mem_peak_bytes", "power_mean_w", "energy_j")
    out, disagree = [], []
    for step, device, util, mem, power, energy_j, method in rows:
        phase = phases[step].name
        out.append([phase, f"GPU {device}", _num(util), _num(mem, 1e9, 2), _num(power), _num(energy_j), method])
        for name, value in zip(names, (util, mem, power, energy_j)):
            expected = mine.get((phase, device), {}).get(name)
            if not _agree(value, expected):
                disagree.append(f"{phase} GPU {device} {name}: collector {value}, here {expected}")
    report.check(len(rows) == len(mine), f"the collector states figures for {len(rows)} of {len(mine)} "
                                         f"(step, device) pairs")
    report.check(not disagree, f"the collector's figures agree with the ones above within "
                               f"{100 * SQL_AGREE_REL:.0f} %" + (": " + "; ".join(disagree) if disagree else ""))
    table(["step", "device", "util mean %", "peak mem GB", "mean power W", "energy J", "energy from"], out)


def _agree(value: float | None, expected: float | None) -> bool:
    if value is None or expected is None:
        return value is None and expected is None
    return abs(value - expected) <= SQL_AGREE_REL * max(abs(expected), 1e-9)


def _batches(phases: list[Phase], pb):
    """One batch per phase: the phase as a step from its first to its last poll, and its samples."""
    for index, phase in enumerate(phases):
        stamps = [s["time_unix_ns"] for s in phase.samples]
        if not stamps:
            continue
        batch = pb.Batch()
        batch.steps.append(pb.StepEvent(run_id=RUN_ID, step=index, concurrency=1, repetition=0,
                                        start_unix_ns=min(stamps), end_unix_ns=max(stamps), mode="closed"))
        for s in phase.samples:
            batch.samples.append(pb.DeviceSample(run_id=RUN_ID, time_unix_ns=s["time_unix_ns"], source=s["source"],
                                                 device=s["device"], values=s["values"]))
        yield batch


def _util(values: list[float]) -> list[str]:
    if not values:
        return ["-", "-", "-"]
    return [f"{statistics.fmean(values):.1f}", f"{percentile(values, 0.5):.1f}", f"{percentile(values, 0.9):.1f}"]


def _num(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def analyse(paths: list[Path]) -> int:
    phases = [load(p) for p in paths]
    first = phases[0].meta
    names = ", ".join(f"GPU {d['index']} {d['name']}" for d in first["devices"])
    print(f"driver {first['driver']}: {names}")
    print("phases: " + ", ".join(f"{p.name} ({p.summary['polls']} polls, {p.summary['wall_s']:.1f} s, "
                                 f"every {p.meta['interval_s']} s)" for p in phases))
    report = Report()
    fields(phases, report)
    energy(phases, report)
    timestamps(phases, report)
    overhead(phases, report)
    collector_figures(phases, step_figures(phases), report)
    print(f"\n{'FAILED' if report.failed else 'OK'}: {report.failed} check(s) failed")
    return 1 if report.failed else 0


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: device_analyse.py SAMPLES.jsonl [SAMPLES.jsonl ...]", file=sys.stderr)
        return 2
    try:
        return analyse([Path(a) for a in argv])
    except Unreadable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
