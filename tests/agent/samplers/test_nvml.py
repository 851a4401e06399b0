"""NvmlSampler on the real pynvml code path, against a scripted C stub of libnvidia-ml.so.1."""

from __future__ import annotations

import ctypes.util
import time
from pathlib import Path

import pytest

from tests.agent.samplers.nvml_stub import H100, device


def script(*devices: dict[str, object], **kwargs: object) -> list[object]:
    return ["script", {"devices": list(devices), **kwargs}]


def by_device(samples: list[dict]) -> dict[str, dict[str, float]]:
    return {s["device"]: s["values"] for s in samples}


OPEN, SAMPLE, CLOSE, INFO = ["open", None], ["sample", None], ["close", None], ["device_info", None]
COUNTERS = ["counters", None]


def test_open_enumerates_devices_and_driver_version(run_nvml):
    run = run_nvml([script(device(0), device(1, name="NVIDIA H100 80GB HBM3"), driver="555.42.06"), OPEN, INFO, CLOSE])
    opened, info = run.results[1], run.results[2]
    assert opened["devices"] == [
        {"index": 0, "name": H100["name"], "uuid": "GPU-00000000-0000-0000-0000-000000000000",
         "mem_total_bytes": H100["mem_total"]},
        {"index": 1, "name": H100["name"], "uuid": "GPU-00000000-0000-0000-0000-000000000001",
         "mem_total_bytes": H100["mem_total"]},
    ]
    assert info == {"kind": "nvidia", "count": 2, "model": H100["name"], "driver_version": "555.42.06",
                    "instance_type": ""}


def test_sample_reports_every_field_with_units_in_names(run_nvml):
    run = run_nvml([script(device(0, gpm=0)), OPEN, SAMPLE, CLOSE])
    [sample] = run.results[2]
    assert sample["source"] == "nvml" and sample["device"] == "0"
    assert sample["values"] == {
        "gpu_util_pct": 87.0,
        "mem_util_pct": 41.0,
        "mem_used_bytes": float(H100["mem_used"]),
        "mem_total_bytes": float(H100["mem_total"]),
        "power_w": 412.345,  # NVML's milliwatts
        "temperature_c": 58.0,
        "sm_clock_mhz": 1980.0,
        "mem_clock_mhz": 2619.0,
        "clocks_event_reasons": 4.0,  # raw mask: SwPowerCap
        "energy_mj": float(H100["energy_mj"]),
    }


def test_values_follow_the_scripted_device_between_samples(run_nvml):
    run = run_nvml([
        script(device(0, power_mw=300_000, energy_mj=1_000_000, gpu_util=10)), OPEN, SAMPLE,
        script(device(0, power_mw=700_000, energy_mj=1_350_000, gpu_util=100)), SAMPLE, CLOSE,
    ])
    first, second = run.results[2][0]["values"], run.results[4][0]["values"]
    assert (first["power_w"], first["energy_mj"], first["gpu_util_pct"]) == (300.0, 1_000_000.0, 10.0)
    assert (second["power_w"], second["energy_mj"], second["gpu_util_pct"]) == (700.0, 1_350_000.0, 100.0)


def test_samples_are_stamped_with_utc_wall_clock(run_nvml):
    before = time.time_ns()
    run = run_nvml([script(device(0)), OPEN, SAMPLE, CLOSE])
    after = time.time_ns()
    assert before <= run.results[2][0]["time_unix_ns"] <= after


def test_every_gpu_of_one_poll_shares_its_stamp(run_nvml):
    run = run_nvml([script(device(0), device(1), device(2)), OPEN, SAMPLE, CLOSE])
    assert len({s["time_unix_ns"] for s in run.results[2]}) == 1  # all on one side of any step boundary


def test_energy_counter_grows_at_the_scripted_rate(run_nvml):
    run = run_nvml([script(device(0, energy_mj=1_000, energy_rate_mw=400_000)), OPEN, SAMPLE, SAMPLE, CLOSE])
    first, second = run.results[2][0], run.results[3][0]
    elapsed_s = (second["time_unix_ns"] - first["time_unix_ns"]) / 1e9
    grown_j = (second["values"]["energy_mj"] - first["values"]["energy_mj"]) / 1e3
    assert first["values"]["energy_mj"] >= 1_000
    assert grown_j == pytest.approx(400 * elapsed_s, abs=400 * 0.005)  # 5 ms of stamp-to-read jitter


def test_counters_read_only_the_energy_counter_of_every_gpu_under_one_stamp(run_nvml):
    run = run_nvml([script(device(0, energy_mj=5_000), device(1, energy_mj=9_000), device(2, unsupported=["energy"])),
                    OPEN, COUNTERS, CLOSE])
    counters = run.results[2]
    # GPU 2 has no energy counter: nothing to report for it
    assert {s["device"]: s["values"] for s in counters} == {"0": {"energy_mj": 5_000.0}, "1": {"energy_mj": 9_000.0}}
    assert len({s["time_unix_ns"] for s in counters}) == 1


def test_reading_counters_between_polls_leaves_gpm_windows_to_the_polls(run_nvml):
    run = run_nvml([script(device(0, gpm=1)), OPEN, SAMPLE, COUNTERS, COUNTERS, SAMPLE, CLOSE])
    assert all(set(s["values"]) == {"energy_mj"} for r in run.results[3:5] for s in r)
    assert "sm_active_pct" in run.results[5][0]["values"]  # the GPM window runs from poll to poll


def test_not_supported_field_is_skipped_and_logged_once(run_nvml):
    run = run_nvml([script(device(0), device(1, unsupported=["power", "temp"])), OPEN, SAMPLE, SAMPLE, SAMPLE, CLOSE])
    for samples in run.results[2:5]:
        values = by_device(samples)
        assert "power_w" in values["0"] and "temperature_c" in values["0"]
        assert "power_w" not in values["1"] and "temperature_c" not in values["1"]
        assert values["1"]["gpu_util_pct"] == 87.0  # the rest of the device is still read
    assert len(run.messages("GPU 1: power not supported")) == 1
    assert len(run.messages("GPU 1: temperature not supported")) == 1
    assert run.messages("GPU 0:") == []


def test_field_that_becomes_supported_again_stays_skipped_for_the_run(run_nvml):
    run = run_nvml([script(device(0, unsupported=["power"])), OPEN, SAMPLE, script(device(0)), SAMPLE, CLOSE])
    assert "power_w" not in run.results[4][0]["values"]


def test_function_missing_from_an_older_driver_is_skipped_and_logged_once(run_nvml, nvml_stub_without_energy):
    run = run_nvml([script(device(0)), OPEN, SAMPLE, SAMPLE, CLOSE], lib=nvml_stub_without_energy)
    for samples in run.results[2:4]:
        assert "energy_mj" not in samples[0]["values"]
        assert samples[0]["values"]["power_w"] == 412.345  # energy per token falls back to integrated power
    assert len(run.messages("GPU 0: energy not supported")) == 1


def test_lost_device_is_dropped_and_the_others_keep_sampling(run_nvml):
    run = run_nvml([script(device(0), device(1, lost_after=2)), OPEN, SAMPLE, SAMPLE, SAMPLE, SAMPLE, CLOSE])
    devices_per_sample = [sorted(by_device(s)) for s in run.results[2:6]]
    assert devices_per_sample == [["0", "1"], ["0", "1"], ["0"], ["0"]]
    lost = run.messages("GPU 1 (GPU-00000000-0000-0000-0000-000000000001) lost")
    assert len(lost) == 1


def test_gpm_sm_and_tensor_activity_from_the_second_sample_on_hopper(run_nvml):
    run = run_nvml([script(device(0, gpm=1)), OPEN, SAMPLE, SAMPLE, CLOSE])
    first, second = run.results[2][0]["values"], run.results[3][0]["values"]
    assert "sm_active_pct" not in first  # GPM metrics need two samples
    assert (second["sm_active_pct"], second["tensor_active_pct"], second["dram_active_pct"]) == (63.5, 22.25, 71.0)


def test_device_without_gpm_reports_no_activity_and_says_so_once(run_nvml):
    run = run_nvml([script(device(0, gpm=0, name="NVIDIA A100-SXM4-40GB")), OPEN, SAMPLE, SAMPLE, CLOSE])
    assert "sm_active_pct" not in run.results[3][0]["values"]
    assert len(run.messages("has no GPM")) == 1


def test_mixed_models_are_all_named_in_device_info(run_nvml):
    run = run_nvml([script(device(0), device(1, name="NVIDIA L40S")), OPEN, INFO, CLOSE])
    assert run.results[2]["model"] == "NVIDIA H100 80GB HBM3 + NVIDIA L40S"


def test_sampler_can_be_reopened_after_close(run_nvml):
    run = run_nvml([script(device(0)), OPEN, CLOSE, OPEN, SAMPLE, CLOSE])
    assert run.results[3]["ok"] and len(run.results[4]) == 1


def test_missing_library_makes_the_sampler_unavailable(run_nvml):
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("a real libnvidia-ml is installed on this machine")
    run = run_nvml([OPEN], lib=None)
    assert "libnvidia-ml.so.1 not found" in run.results[0]["unavailable"]


def test_driver_not_loaded_makes_the_sampler_unavailable(run_nvml):
    run = run_nvml([script(device(0), init_error=9), OPEN])
    assert run.results[1]["unavailable"] == "NVML unavailable: the NVIDIA kernel driver is not loaded"


def test_no_gpus_makes_the_sampler_unavailable(run_nvml):
    run = run_nvml([script(), OPEN])
    assert "sees no GPUs" in run.results[1]["unavailable"]


def test_stub_source_is_shipped_beside_the_tests():
    assert (Path(__file__).parent / "nvml_stub" / "stub.c").is_file()
