"""AWS Neuron telemetry from a `neuron-monitor` child process.

The sampler writes a neuron-monitor config (period = the sampling interval), runs
`neuron-monitor -c CONFIG`, and reads one JSON report per line on a background thread. Each report
is stamped on receipt (neuron-monitor carries no timestamp) and turned into samples at once;
`sample()` hands over whatever arrived since the previous call. If the process dies it is restarted
with exponential back-off. Every section of a report is optional: null sections, empty runtime lists,
a group's non-empty `error`, `flops` vs `effective_flops`, and broken lines are skipped, each kind
logged once.

neuron-monitor has no power reading, so Neuron samples carry no `power_w` or energy.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import IO, Any

from siliconbench.core.backoff import Backoff
from siliconbench.agent.samplers.base import DeviceInfo, Sample, SamplerUnavailable

log = logging.getLogger(__name__)

RUNTIME_GROUPS = ("neuroncore_counters", "memory_used", "execution_stats", "neuron_runtime_vcpu_usage")
SYSTEM_GROUPS = ("neuron_hw_counters", "memory_info", "vcpu_usage")
_MAX_RESTART_DELAY_S = 30.0
_BUFFERED_REPORTS = 600  # reports kept when nobody polls (10 min at 1 Hz); older ones are dropped
_STDERR_TAIL_LINES = 5


def monitor_config(interval_s: float, tag_filter: str = ".*") -> dict[str, Any]:
    """The neuron-monitor config for one report per `interval_s` with the groups we parse."""
    ms = max(1, round(interval_s * 1000))
    period = f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
    return {
        "period": period,
        "neuron_runtimes": [{"tag_filter": tag_filter, "metrics": [{"type": g} for g in RUNTIME_GROUPS]}],
        "system_metrics": [{"type": g} for g in SYSTEM_GROUPS],
    }


class NeuronSampler:
    """Neuron devices via `neuron-monitor`; `binary` is a name on PATH or a path (tests pass a fake)."""

    name = "neuron"

    def __init__(
        self,
        interval_s: float = 1.0,
        binary: str = "neuron-monitor",
        *,
        tag_filter: str = ".*",
        restart_delay_s: float = 0.5,
    ) -> None:
        self._interval_s = interval_s
        self._binary = binary
        self._tag_filter = tag_filter
        self._restart_delay_s = restart_delay_s
        self._reports: collections.deque[list[Sample]] = collections.deque(maxlen=_BUFFERED_REPORTS)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first_report = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._config_path = ""
        self._logged: set[str] = set()
        self._hardware: dict[str, Any] = {}
        self._instance: dict[str, Any] = {}

    # -- Sampler protocol -------------------------------------------------------------------
    def open(self) -> None:
        if self._thread is not None:
            return
        path = shutil.which(self._binary)
        if path is None:
            raise SamplerUnavailable(
                f"{self._binary} not found on PATH; install aws-neuronx-tools or mount it from the host "
                "and give its path with --neuron-monitor (SILICONBENCH_NEURON_MONITOR)"
            )
        fd, self._config_path = tempfile.mkstemp(prefix="siliconbench-neuron-monitor-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(monitor_config(self._interval_s, self._tag_filter), f)
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, args=(path,), name="neuron-monitor", daemon=True)
        self._thread.start()

    def sample(self) -> list[Sample]:
        with self._lock:
            reports = list(self._reports)
            self._reports.clear()
        return [s for report in reports for s in report]

    def counters(self) -> list[Sample]:
        return []  # neuron-monitor reports on its own period and has no energy counter

    def close(self) -> None:
        self._stop.set()
        self._terminate()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._config_path:
            os.unlink(self._config_path)
            self._config_path = ""

    # -- What the node is -------------------------------------------------------------------
    def wait_first_report(self, timeout_s: float) -> bool:
        """Block until the first report has been read (or `timeout_s`); True if one arrived."""
        return self._first_report.wait(timeout_s)

    @property
    def instance_type(self) -> str:
        return str(self._instance.get("instance_type") or "")

    def device_info(self) -> DeviceInfo:
        """What the latest report said about the hardware (empty before the first report)."""
        hw = self._hardware
        return DeviceInfo(
            kind="neuron",
            count=int(hw.get("neuron_device_count") or 0),
            model=str(hw.get("neuron_device_type") or ""),
            driver_version=_neuron_driver_version(),
            instance_type=self.instance_type,
        )

    # -- Child process ----------------------------------------------------------------------
    def _supervise(self, path: str) -> None:
        backoff = Backoff(self._restart_delay_s, max(self._restart_delay_s, _MAX_RESTART_DELAY_S))
        while not self._stop.is_set():
            started = time.monotonic()
            rc, stderr_tail = self._run_once(path)
            if self._stop.is_set():
                return
            if time.monotonic() - started > _MAX_RESTART_DELAY_S:
                backoff.reset()  # it ran healthily for a while: start the back-off over
            delay = backoff.next()
            log.warning(
                "neuron-monitor exited with code %s; restarting in %.2fs (stderr: %s)",
                rc,
                delay,
                " | ".join(stderr_tail) or "empty",
            )
            if self._stop.wait(delay):
                return

    def _run_once(self, path: str) -> tuple[int | None, list[str]]:
        try:
            proc = subprocess.Popen(
                [path, "-c", self._config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
        except OSError as err:
            return None, [str(err)]
        self._proc = proc
        if self._stop.is_set():  # close() ran while we were starting it
            self._terminate()
        assert proc.stdout is not None and proc.stderr is not None
        tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        drain = threading.Thread(target=_drain, args=(proc.stderr, tail), name="neuron-monitor-stderr", daemon=True)
        drain.start()
        for line in proc.stdout:
            self._on_line(line, time.time_ns())
        rc = proc.wait()
        drain.join(timeout=1)
        return rc, list(tail)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # -- Parsing ----------------------------------------------------------------------------
    def _on_line(self, line: bytes, stamp: int) -> None:
        if not line.strip():
            return
        try:
            doc = json.loads(line)
        except ValueError:
            self._once("partial line" if not line.endswith(b"\n") else "malformed JSON line", line[:80])
            return
        if not isinstance(doc, dict):
            self._once("report that is not a JSON object", line[:80])
            return
        self._remember_node(doc)
        samples = _ReportParser(stamp, self._hardware, self._once).parse(doc)
        with self._lock:
            self._reports.append(samples)
        self._first_report.set()

    def _remember_node(self, doc: dict[str, Any]) -> None:
        hw = _group(doc.get("neuron_hardware_info"), "neuron_hardware_info", self._once)
        if hw:
            self._hardware = hw
        inst = doc.get("instance_info")
        if isinstance(inst, dict):  # keep what it has even with an `error` (IMDS may be blocked in a pod)
            if inst.get("error"):
                self._once("instance_info error", inst["error"])
            self._instance = inst

    def _once(self, kind: str, detail: object) -> None:
        """Log the first occurrence of each kind of problem in the report stream."""
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("neuron-monitor: skipping %s: %r (further ones not logged)", kind, detail)


def _drain(stream: IO[bytes], tail: collections.deque[str]) -> None:
    for line in stream:
        tail.append(line.decode(errors="replace").rstrip())


def _group(value: Any, name: str, once: Any) -> dict[str, Any] | None:
    """A metric group if it is present and healthy; a non-empty `error` skips it (logged once)."""
    if not isinstance(value, dict):
        return None
    if value.get("error"):
        once(f"{name} with error", value["error"])
        return None
    return value


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class _ReportParser:
    """Turns one neuron-monitor report into samples, all stamped with the time it was received."""

    def __init__(self, stamp: int, hardware: dict[str, Any], once: Any) -> None:
        self.stamp = stamp
        self.once = once
        self.cores_per_device = int(hardware.get("neuroncore_per_device_count") or 0)
        self.device_count = int(hardware.get("neuron_device_count") or 0)
        self.device_mem_total = _num(hardware.get("neuron_device_memory_size"))
        self.cores: dict[str, dict[str, float]] = {}
        self.devices: dict[str, dict[str, float]] = {}
        self.other: dict[str, dict[str, float]] = {}

    def parse(self, doc: dict[str, Any]) -> list[Sample]:
        runtimes = doc.get("neuron_runtime_data")
        counters_seen = False
        for runtime in runtimes if isinstance(runtimes, list) else []:
            counters_seen |= self._runtime(runtime)
        if counters_seen:
            self._idle_cores()
        system = doc.get("system_data")
        if isinstance(system, dict):
            self._system(system)
        return [
            Sample(time_unix_ns=self.stamp, source="neuron", device=device, values=values)
            for table in (self.cores, self.devices, self.other)
            for device, values in table.items()
            if values
        ]

    def _runtime(self, runtime: Any) -> bool:
        if not isinstance(runtime, dict):
            return False
        if runtime.get("error"):
            self.once("runtime with error", runtime["error"])
            return False
        report = runtime.get("report")
        if not isinstance(report, dict):
            return False
        tag = str(runtime.get("neuron_runtime_tag") or runtime.get("pid") or "unknown")
        out = self.other.setdefault(f"runtime:{tag}", {})
        counters = _group(report.get("neuroncore_counters"), "neuroncore_counters", self.once)
        if counters:
            self._core_counters(counters)
        memory = _group(report.get("memory_used"), "memory_used", self.once)
        if memory:
            self._memory(memory, out)
        stats = _group(report.get("execution_stats"), "execution_stats", self.once)
        if stats:
            _execution(stats, out)
        vcpu = _group(report.get("neuron_runtime_vcpu_usage"), "neuron_runtime_vcpu_usage", self.once)
        if vcpu and isinstance(vcpu.get("vcpu_usage"), dict):
            _put(out, "vcpu_user_pct", vcpu["vcpu_usage"].get("user"))
            _put(out, "vcpu_system_pct", vcpu["vcpu_usage"].get("system"))
        return counters is not None

    def _core(self, index: str) -> dict[str, float]:
        core = self.cores.get(f"nc{index}")
        if core is None:
            core = self.cores[f"nc{index}"] = {}
            if self.cores_per_device and index.isdigit():
                core["neuron_device_index"] = float(int(index) // self.cores_per_device)
        return core

    def _core_counters(self, group: dict[str, Any]) -> None:
        in_use = group.get("neuroncores_in_use")
        for index, data in (in_use if isinstance(in_use, dict) else {}).items():
            if not isinstance(data, dict):
                continue
            core = self._core(str(index))
            util = _num(data.get("neuroncore_utilization"))
            if util is not None:  # several runtimes can share a core: sum, clamp to 100
                core["neuroncore_util_pct"] = min(100.0, core.get("neuroncore_util_pct", 0.0) + util)
            flops = _num(data.get("flops"))
            if flops is None:  # some releases name it effective_flops
                flops = _num(data.get("effective_flops"))
            if flops is not None:
                core["flops_per_s"] = core.get("flops_per_s", 0.0) + flops

    def _idle_cores(self) -> None:
        """Cores absent from `neuroncores_in_use` were idle for the period: report them at 0 %."""
        for i in range(self.device_count * self.cores_per_device):
            self._core(str(i)).setdefault("neuroncore_util_pct", 0.0)

    def _memory(self, group: dict[str, Any], out: dict[str, float]) -> None:
        used = group.get("neuron_runtime_used_bytes")
        if not isinstance(used, dict):
            return
        _put(out, "host_mem_used_bytes", used.get("host"))
        _put(out, "device_mem_used_bytes", used.get("neuron_device"))
        breakdown = used.get("usage_breakdown")
        per_core = breakdown.get("neuroncore_memory_usage") if isinstance(breakdown, dict) else None
        for index, parts in (per_core if isinstance(per_core, dict) else {}).items():
            if not isinstance(parts, dict):
                continue
            total = sum(v for v in map(_num, parts.values()) if v is not None)
            core = self._core(str(index))
            core["mem_used_bytes"] = core.get("mem_used_bytes", 0.0) + total
            if self.cores_per_device and str(index).isdigit():
                dev = self._device(int(index) // self.cores_per_device)
                dev["mem_used_bytes"] = dev.get("mem_used_bytes", 0.0) + total

    def _device(self, index: int) -> dict[str, float]:
        dev = self.devices.get(f"nd{index}")
        if dev is None:
            dev = self.devices[f"nd{index}"] = {}
            if self.device_mem_total is not None:
                dev["mem_total_bytes"] = self.device_mem_total
        return dev

    def _system(self, system: dict[str, Any]) -> None:
        mem = _group(system.get("memory_info"), "memory_info", self.once)
        host = self.other.setdefault("host", {})
        if mem:
            for key in ("memory_total_bytes", "memory_used_bytes", "swap_total_bytes", "swap_used_bytes"):
                _put(host, key.replace("memory_", "mem_"), mem.get(key))
        vcpu = _group(system.get("vcpu_usage"), "vcpu_usage", self.once)
        avg = vcpu.get("average_usage") if vcpu else None
        if isinstance(avg, dict):
            for key in ("user", "nice", "system", "idle", "io_wait", "irq", "soft_irq"):
                _put(host, f"cpu_{key}_pct", avg.get(key))
        hw = _group(system.get("neuron_hw_counters"), "neuron_hw_counters", self.once)
        entries = hw.get("neuron_devices") if hw else None
        for entry in entries if isinstance(entries, list) else []:
            index = entry.get("neuron_device_index") if isinstance(entry, dict) else None
            if not isinstance(index, int):
                continue
            dev = self._device(index)
            for key in ("mem_ecc_corrected", "mem_ecc_uncorrected", "sram_ecc_corrected", "sram_ecc_uncorrected"):
                _put(dev, key, entry.get(key))


def _execution(group: dict[str, Any], out: dict[str, float]) -> None:
    _put(out, "exec_period_s", group.get("period"))
    summary = group.get("execution_summary")
    if isinstance(summary, dict):
        _put(out, "exec_completed", summary.get("completed"))
        # every outcome other than a clean `completed` (with error, timed out, failed to queue...)
        failed = [_num(v) for k, v in summary.items() if k != "completed"]
        out["exec_failed"] = sum(v for v in failed if v is not None)
    errors = group.get("error_summary")
    if isinstance(errors, dict):
        out["exec_errors"] = sum(v for v in map(_num, errors.values()) if v is not None)
    latency = group.get("latency_stats")
    total = latency.get("total_latency") if isinstance(latency, dict) else None
    if isinstance(total, dict):  # null when nothing executed in the period
        for p in ("p50", "p99"):
            _put(out, f"exec_latency_{p}_s", total.get(p))


def _put(out: dict[str, float], key: str, value: Any) -> None:
    number = _num(value)
    if number is not None:
        out[key] = number


def _neuron_driver_version() -> str:
    try:
        with open("/sys/module/neuron/version") as f:
            return f.read().strip()
    except OSError:
        return ""
