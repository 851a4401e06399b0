"""NVIDIA GPU telemetry through NVML (`pynvml` from nvidia-ml-py).

Read-only: the sampler initialises NVML and reads counters; it never creates a CUDA context, sets a
clock, enables GPM streaming or otherwise takes anything from the vLLM process that owns the GPUs.

Per device and poll it reads utilisation, memory, power, temperature, SM/memory clocks, the raw
clock-event (throttle) mask, the cumulative energy counter and, on Hopper and newer, GPM SM and
tensor activity. A field the device refuses (NotSupported, FunctionNotFound on an older driver,
NoPermission) is dropped for that device for the rest of the run, with one log line. A device that
falls off the bus (GPU_IS_LOST, NOT_FOUND) is dropped with one log line; the others keep sampling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siliconbench.agent.samplers.base import DeviceInfo, Sample, SamplerUnavailable, now_unix_ns

try:
    import pynvml as N
except ImportError:  # nvidia-ml-py is a dependency; this guards a stripped-down install
    N = None

log = logging.getLogger(__name__)

# NVML return codes (nvml.h); pynvml raises NVMLError subclasses carrying them in `.value`.
_NOT_SUPPORTED, _NO_PERMISSION, _NOT_FOUND, _FUNCTION_NOT_FOUND, _GPU_IS_LOST = 3, 4, 6, 13, 15
_FIELD_UNSUPPORTED = frozenset({_NOT_SUPPORTED, _NO_PERMISSION, _FUNCTION_NOT_FOUND})
_DEVICE_GONE = frozenset({_GPU_IS_LOST, _NOT_FOUND})

# GPM metric ids (nvml.h NVML_GPM_METRIC_*) -> our metric names, all 0-100 %.
_GPM_METRICS: tuple[tuple[int, str], ...] = ((2, "sm_active_pct"), (5, "tensor_active_pct"), (10, "dram_active_pct"))


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU as enumerated at `open()`."""

    index: int
    name: str
    uuid: str
    mem_total_bytes: int


@dataclass(slots=True)
class _Gpm:
    """Two GPM samples per device; metrics are computed over the interval between consecutive polls."""

    prev: Any
    cur: Any
    request: Any
    primed: bool = False

    @classmethod
    def alloc(cls) -> _Gpm:
        request = N.c_nvmlGpmMetricsGet_t()
        request.version = N.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(_GPM_METRICS)
        for i, (metric_id, _) in enumerate(_GPM_METRICS):
            request.metrics[i].metricId = metric_id
        return cls(prev=N.nvmlGpmSampleAlloc(), cur=N.nvmlGpmSampleAlloc(), request=request)

    def read(self, handle: Any) -> dict[str, float]:
        N.nvmlGpmSampleGet(handle, self.cur)
        values: dict[str, float] = {}
        if self.primed:
            self.request.sample1, self.request.sample2 = self.prev, self.cur
            N.nvmlGpmMetricsGet(self.request)
            for i, (_, name) in enumerate(_GPM_METRICS):
                metric = self.request.metrics[i]
                if metric.nvmlReturn == 0:
                    values[name] = float(metric.value)
        self.prev, self.cur, self.primed = self.cur, self.prev, True
        return values

    def free(self) -> None:
        for s in (self.prev, self.cur):
            N.nvmlGpmSampleFree(s)


@dataclass(slots=True)
class _Device:
    info: GpuDevice
    handle: Any
    skipped: set[str] = field(default_factory=set)
    gpm: _Gpm | None = None


def _read_utilization(h: Any) -> dict[str, float]:
    u = N.nvmlDeviceGetUtilizationRates(h)
    return {"gpu_util_pct": float(u.gpu), "mem_util_pct": float(u.memory)}


def _read_memory(h: Any) -> dict[str, float]:
    # v2 reports `used` without the driver-reserved part; fall back to v1 on drivers without it.
    try:
        m = N.nvmlDeviceGetMemoryInfo(h, version=N.nvmlMemory_v2)
    except N.NVMLError_FunctionNotFound:
        m = N.nvmlDeviceGetMemoryInfo(h)
    return {"mem_used_bytes": float(m.used), "mem_total_bytes": float(m.total)}


def _read_power(h: Any) -> dict[str, float]:
    return {"power_w": N.nvmlDeviceGetPowerUsage(h) / 1000.0}  # NVML reports milliwatts


def _read_temperature(h: Any) -> dict[str, float]:
    return {"temperature_c": float(N.nvmlDeviceGetTemperature(h, N.NVML_TEMPERATURE_GPU))}


def _read_sm_clock(h: Any) -> dict[str, float]:
    return {"sm_clock_mhz": float(N.nvmlDeviceGetClockInfo(h, N.NVML_CLOCK_SM))}


def _read_mem_clock(h: Any) -> dict[str, float]:
    return {"mem_clock_mhz": float(N.nvmlDeviceGetClockInfo(h, N.NVML_CLOCK_MEM))}


def _read_clocks_event_reasons(h: Any) -> dict[str, float]:
    return {"clocks_event_reasons": float(N.nvmlDeviceGetCurrentClocksEventReasons(h))}


def _read_energy(h: Any) -> dict[str, float]:
    return {"energy_mj": float(N.nvmlDeviceGetTotalEnergyConsumption(h))}  # cumulative since driver load


_ENERGY: tuple[str, Callable[[Any], dict[str, float]]] = ("energy", _read_energy)  # also read alone, at step boundaries
_FIELDS: tuple[tuple[str, Callable[[Any], dict[str, float]]], ...] = (
    ("utilization", _read_utilization),
    ("memory", _read_memory),
    ("power", _read_power),
    ("temperature", _read_temperature),
    ("sm_clock", _read_sm_clock),
    ("mem_clock", _read_mem_clock),
    ("clocks_event_reasons", _read_clocks_event_reasons),
    _ENERGY,
)


class NvmlSampler:
    """Samples every GPU NVML can see; `open()` raises `SamplerUnavailable` on a node without one."""

    name = "nvml"

    def __init__(self) -> None:
        self._devices: list[_Device] = []
        self._driver_version = ""
        self._enumerated: tuple[GpuDevice, ...] = ()
        self._open = False
        self._lock = threading.Lock()

    def open(self) -> None:
        if self._open:
            return
        if N is None:
            raise SamplerUnavailable("NVML unavailable: the nvidia-ml-py package (module pynvml) is not installed")
        try:
            N.nvmlInit()
        except N.NVMLError as err:
            raise SamplerUnavailable(_init_failure_message(err)) from err
        try:
            self._driver_version = N.nvmlSystemGetDriverVersion()
            self._devices = [self._enumerate(i) for i in range(N.nvmlDeviceGetCount())]
        except N.NVMLError as err:
            N.nvmlShutdown()
            raise SamplerUnavailable(f"NVML initialised but enumerating GPUs failed: {err}") from err
        if not self._devices:
            N.nvmlShutdown()
            raise SamplerUnavailable("NVML initialised but sees no GPUs on this node")
        self._enumerated = tuple(d.info for d in self._devices)
        self._open = True
        log.info(
            "nvml: %d GPU(s), driver %s: %s",
            len(self._devices),
            self._driver_version,
            ", ".join(f"{d.index}={d.name} {d.uuid}" for d in self._enumerated),
        )

    @property
    def devices(self) -> tuple[GpuDevice, ...]:
        """The GPUs enumerated at `open()`, including any dropped since."""
        return self._enumerated

    def device_info(self) -> DeviceInfo:
        names = dict.fromkeys(d.name for d in self._enumerated)  # ordered, unique
        return DeviceInfo(
            kind="nvidia",
            count=len(self._enumerated),
            model=" + ".join(names),
            driver_version=self._driver_version,
        )

    def sample(self) -> list[Sample]:
        # One stamp for the whole poll: every GPU's reading of a poll then falls on the same side of a
        # step boundary, so node figures pool the same number of samples per GPU. The energy counter's
        # rate is unaffected: each GPU is read at the same offset from the stamp in every poll.
        return self._read_all(full=True)

    def counters(self) -> list[Sample]:
        """The energy counter of every GPU, under one stamp (read at step boundaries)."""
        return self._read_all(full=False)

    def _read_all(self, full: bool) -> list[Sample]:
        with self._lock:  # stamped inside: a poll waiting for another one is stamped when it reads
            stamp = now_unix_ns()
            samples = []
            for dev in list(self._devices):
                sample = self._sample_device(dev, stamp, full)
                if sample is not None and sample.values:
                    samples.append(sample)
            return samples

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            try:
                for dev in self._devices:
                    if dev.gpm is not None:
                        dev.gpm.free()
                N.nvmlShutdown()
            except N.NVMLError as err:
                log.warning("nvml: shutdown failed: %s", err)
            self._devices = []

    def _enumerate(self, index: int) -> _Device:
        handle = N.nvmlDeviceGetHandleByIndex(index)
        info = GpuDevice(
            index=index,
            name=N.nvmlDeviceGetName(handle),
            uuid=N.nvmlDeviceGetUUID(handle),
            mem_total_bytes=int(N.nvmlDeviceGetMemoryInfo(handle).total),
        )
        dev = _Device(info=info, handle=handle)
        dev.gpm = self._open_gpm(dev)
        return dev

    def _open_gpm(self, dev: _Device) -> _Gpm | None:
        try:
            supported = bool(N.nvmlGpmQueryDeviceSupport(dev.handle).isSupportedDevice)
            if supported:
                return _Gpm.alloc()
        except N.NVMLError as err:
            if err.value not in _FIELD_UNSUPPORTED:
                raise
        log.info("nvml: GPU %d (%s) has no GPM (pre-Hopper); sm/tensor activity not collected", dev.info.index, dev.info.name)
        dev.skipped.add("gpm")
        return None

    def _sample_device(self, dev: _Device, stamp: int, full: bool) -> Sample | None:
        values: dict[str, float] = {}
        readers = list(_FIELDS) if full else [_ENERGY]
        if full and dev.gpm is not None and "gpm" not in dev.skipped:
            readers.append(("gpm", dev.gpm.read))
        for field_name, read in readers:
            if field_name in dev.skipped:
                continue
            try:
                values.update(read(dev.handle))
            except N.NVMLError as err:
                if err.value in _DEVICE_GONE:
                    self._drop(dev, err)
                    return None
                self._field_failed(dev, field_name, err)
        return Sample(time_unix_ns=stamp, source=self.name, device=str(dev.info.index), values=values)

    def _field_failed(self, dev: _Device, field_name: str, err: Any) -> None:
        if err.value in _FIELD_UNSUPPORTED:
            dev.skipped.add(field_name)
            log.info("nvml: GPU %d: %s not supported (%s); skipped for the rest of the run", dev.info.index, field_name, err)
            return
        # Transient (Unknown, Timeout...): skip this reading only; log the first of each kind per field.
        key = f"{field_name}:error:{err.value}"
        if key not in dev.skipped:
            dev.skipped.add(key)
            log.warning("nvml: GPU %d: reading %s failed: %s (further such errors not logged)", dev.info.index, field_name, err)

    def _drop(self, dev: _Device, err: Any) -> None:
        self._devices.remove(dev)
        if dev.gpm is not None:
            try:
                dev.gpm.free()
            except N.NVMLError:
                pass  # the device is gone; its samples are host memory the driver may already have released
        log.warning("nvml: GPU %d (%s) lost: %s; dropped, sampling continues for the others", dev.info.index, dev.info.uuid, err)


def _init_failure_message(err: Any) -> str:
    if isinstance(err, N.NVMLError_LibraryNotFound):
        return (
            "NVML unavailable: libnvidia-ml.so.1 not found (no NVIDIA driver on this node, "
            "or the container runtime did not mount it)"
        )
    if isinstance(err, N.NVMLError_DriverNotLoaded):
        return "NVML unavailable: the NVIDIA kernel driver is not loaded"
    return f"NVML unavailable: nvmlInit failed: {err}"
