"""Which telemetry sources this node has: NVIDIA GPUs (NVML), AWS Neuron devices, and always the host."""

from __future__ import annotations

import glob
import logging
import shutil

from siliconbench.agent.samplers.base import DeviceInfo, Sampler, SamplerUnavailable
from siliconbench.agent.samplers.neuron import NeuronSampler
from siliconbench.agent.samplers.nvml import NvmlSampler

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0  # neuron-monitor writes its first report after one period


def neuron_present(neuron_monitor: str = "neuron-monitor") -> bool:
    """A Neuron node: device files exist, or at least the monitor binary is installed."""
    return bool(glob.glob("/dev/neuron[0-9]*")) or shutil.which(neuron_monitor) is not None


def nvml_present() -> bool:
    """True if NVML initialises and sees at least one GPU (it is shut down again at once)."""
    probe = NvmlSampler()
    try:
        probe.open()
    except SamplerUnavailable as err:
        log.debug("no NVML: %s", err)
        return False
    probe.close()
    return True


def detect_samplers(interval_s: float, neuron_monitor: str = "neuron-monitor") -> list[Sampler]:
    """The samplers for this node, not yet opened (the runner opens them).

    A Neuron node whose `neuron-monitor` is missing still gets a `NeuronSampler`: its `open()` raises
    `SamplerUnavailable` saying how to install the binary, which the runner logs.
    """
    from siliconbench.agent.samplers.host import HostSampler  # the host sampler is always there

    samplers: list[Sampler] = []
    if nvml_present():
        samplers.append(NvmlSampler())
    if neuron_present(neuron_monitor):
        samplers.append(NeuronSampler(interval_s, neuron_monitor))
    samplers.append(HostSampler())
    return samplers


def probe_devices(neuron_monitor: str = "neuron-monitor", timeout_s: float = PROBE_TIMEOUT_S) -> DeviceInfo:
    """What accelerators the node has, for `siliconbench-agent probe` and the agent's Hello.

    NVML first; then Neuron, which starts neuron-monitor and waits up to `timeout_s` for its first
    report (for the device count and instance type). Raises `SamplerUnavailable` on a Neuron node
    without neuron-monitor; returns kind "none" on a node with neither.
    """
    nvml = NvmlSampler()
    try:
        nvml.open()
    except SamplerUnavailable as err:
        log.debug("no NVML: %s", err)
    else:
        try:
            return nvml.device_info()
        finally:
            nvml.close()
    if not neuron_present(neuron_monitor):
        return DeviceInfo(kind="none", count=0)
    neuron = NeuronSampler(1.0, neuron_monitor)
    neuron.open()
    try:
        if not neuron.wait_first_report(timeout_s):
            log.warning("neuron-monitor wrote no report within %.0fs; device details unknown", timeout_s)
        return neuron.device_info()
    finally:
        neuron.close()
