"""NvmlSampler on a real NVIDIA GPU and driver (marked `gpu`; skipped where NVML cannot start)."""

from __future__ import annotations

import time

import pytest

from siliconbench.agent.samplers.base import SamplerUnavailable
from siliconbench.agent.samplers.nvml import NvmlSampler

pytestmark = pytest.mark.gpu


@pytest.fixture
def sampler():
    nvml = NvmlSampler()
    try:
        nvml.open()
    except SamplerUnavailable as exc:
        pytest.skip(f"no real GPU here: {exc}")
    yield nvml
    nvml.close()


def test_real_gpu_reports_identity_memory_power_and_a_growing_energy_counter(sampler):
    info = sampler.device_info()
    assert info.kind == "nvidia" and info.count >= 1 and info.driver_version
    first = {s.device: s.values for s in sampler.sample()}
    time.sleep(1.2)
    second = {s.device: s.values for s in sampler.sample()}
    for device, values in second.items():
        assert values["mem_total_bytes"] > 0
        assert 0 <= values["gpu_util_pct"] <= 100
        assert values["power_w"] > 0
        if "energy_mj" in values:
            assert values["energy_mj"] >= first[device]["energy_mj"]
