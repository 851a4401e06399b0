"""Auto-detection of telemetry sources and the `probe` summary."""

from __future__ import annotations

import glob

import pytest

from siliconbench.agent.samplers.detect import detect_samplers, nvml_present, probe_devices
from siliconbench.agent.samplers.neuron import NeuronSampler
from tests.agent.samplers.conftest import FAKE_NEURON_MONITOR
from tests.agent.samplers.nvml_stub import device

no_neuron_devices = pytest.mark.skipif(bool(glob.glob("/dev/neuron[0-9]*")), reason="this node has Neuron devices")


def test_nvml_node_gets_nvml_and_host_samplers(run_nvml):
    run = run_nvml([["script", {"devices": [device(0)]}], ["detect", None]])
    assert run.results[1] == ["nvml", "host"]


def test_probe_on_a_gpu_node_describes_the_gpus(run_nvml):
    run = run_nvml([["script", {"devices": [device(0), device(1)], "driver": "550.54.15"}], ["probe", None]])
    assert run.results[1] == {"kind": "nvidia", "count": 2, "model": "NVIDIA H100 80GB HBM3",
                              "driver_version": "550.54.15", "instance_type": ""}


def test_neuron_monitor_on_path_adds_a_neuron_sampler_before_host():
    samplers = detect_samplers(0.5, neuron_monitor=str(FAKE_NEURON_MONITOR))
    names = [s.name for s in samplers]
    assert names[-1] == "host" and "neuron" in names
    neuron = next(s for s in samplers if isinstance(s, NeuronSampler))
    assert neuron._interval_s == 0.5  # private: the period neuron-monitor will be configured with


@no_neuron_devices
def test_node_without_accelerators_gets_only_the_host_sampler():
    if nvml_present():
        pytest.skip("this node has NVIDIA GPUs")
    assert [s.name for s in detect_samplers(1.0, neuron_monitor="no-such-neuron-monitor")] == ["host"]


def test_probe_on_a_neuron_node_reports_instance_type_from_neuron_monitor(fake_monitor_env):
    if nvml_present():
        pytest.skip("this node has NVIDIA GPUs")
    fake_monitor_env()
    info = probe_devices(neuron_monitor=str(FAKE_NEURON_MONITOR))
    assert (info.kind, info.count, info.model, info.instance_type) == ("neuron", 12, "inferentia2", "inf2.48xlarge")


@no_neuron_devices
def test_probe_without_accelerators_says_none():
    if nvml_present():
        pytest.skip("this node has NVIDIA GPUs")
    info = probe_devices(neuron_monitor="no-such-neuron-monitor")
    assert (info.kind, info.count) == ("none", 0)


def test_every_sampler_implements_the_sampler_protocol():
    from siliconbench.agent.samplers.base import Sampler
    from siliconbench.agent.samplers.nvml import NvmlSampler

    assert isinstance(NvmlSampler(), Sampler) and isinstance(NeuronSampler(), Sampler)
