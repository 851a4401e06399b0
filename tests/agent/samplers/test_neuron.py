"""NeuronSampler against a fake neuron-monitor that replays the fixtures, one report per line."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from siliconbench.agent.samplers.base import Sample, SamplerUnavailable
from siliconbench.agent.samplers.neuron import NeuronSampler, monitor_config
from tests.agent.samplers.conftest import FAKE_NEURON_MONITOR, INF2_FIXTURE, TRN2_FIXTURE

INTERVAL_S = 0.05
INF2 = json.loads(INF2_FIXTURE.read_text())
INF2_CORES = INF2["neuron_runtime_data"][0]["report"]["neuroncore_counters"]["neuroncores_in_use"]
INF2_CORE_MEMORY = INF2["neuron_runtime_data"][0]["report"]["memory_used"]["neuron_runtime_used_bytes"][
    "usage_breakdown"]["neuroncore_memory_usage"]


@pytest.fixture
def sampler() -> Iterator[NeuronSampler]:
    s = NeuronSampler(INTERVAL_S, str(FAKE_NEURON_MONITOR), restart_delay_s=0.05)
    yield s
    s.close()


def collect_until(s: NeuronSampler, done: Callable[[list[Sample]], bool], timeout_s: float = 10.0) -> list[Sample]:
    """Poll like the runner does until `done(all samples so far)` holds."""
    got: list[Sample] = []
    deadline = time.monotonic() + timeout_s
    while not done(got):
        assert time.monotonic() < deadline, f"condition not met; got {len(got)} samples"
        got.extend(s.sample())
        time.sleep(INTERVAL_S / 2)
    return got


def first_report(s: NeuronSampler) -> dict[str, dict[str, float]]:
    s.open()
    assert s.wait_first_report(10)
    samples = s.sample()
    stamp = samples[0].time_unix_ns
    return {x.device: x.values for x in samples if x.time_unix_ns == stamp}


def warnings(caplog: pytest.LogCaptureFixture, containing: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "siliconbench.agent.samplers.neuron" and containing in r.getMessage()]


def test_generated_config_sets_period_and_metric_groups():
    config = monitor_config(1.0)
    assert config["period"] == "1s"
    assert [m["type"] for m in config["neuron_runtimes"][0]["metrics"]] == [
        "neuroncore_counters", "memory_used", "execution_stats", "neuron_runtime_vcpu_usage"]
    assert [m["type"] for m in config["system_metrics"]] == ["neuron_hw_counters", "memory_info", "vcpu_usage"]


def test_sub_second_interval_becomes_a_millisecond_period():
    assert monitor_config(0.1)["period"] == "100ms"
    assert monitor_config(2.5)["period"] == "2500ms"


def test_monitor_is_started_with_the_generated_config(sampler, fake_monitor_env, tmp_path):
    fake_monitor_env(config_out=tmp_path / "config.json")
    first_report(sampler)
    assert json.loads((tmp_path / "config.json").read_text()) == monitor_config(INTERVAL_S)


def test_missing_binary_raises_a_clear_unavailable():
    with pytest.raises(SamplerUnavailable) as err:
        NeuronSampler(1.0, "neuron-monitor-that-does-not-exist").open()
    assert str(err.value) == (
        "neuron-monitor-that-does-not-exist not found on PATH; install aws-neuronx-tools or mount it from the host "
        "and give its path with --neuron-monitor (SILICONBENCH_NEURON_MONITOR)")


def test_utilisation_and_flops_per_neuroncore(sampler, fake_monitor_env):
    fake_monitor_env()
    report = first_report(sampler)
    cores = {d: v for d, v in report.items() if d.startswith("nc")}
    assert len(cores) == 24
    for index, data in INF2_CORES.items():
        assert cores[f"nc{index}"]["neuroncore_util_pct"] == data["neuroncore_utilization"]
        assert cores[f"nc{index}"]["flops_per_s"] == data["flops"]
        assert cores[f"nc{index}"]["neuron_device_index"] == int(index) // 2  # inf2: 2 cores per device


def test_device_memory_is_the_sum_of_its_cores(sampler, fake_monitor_env):
    fake_monitor_env()
    report = first_report(sampler)
    expected = sum(INF2_CORE_MEMORY["0"].values()) + sum(INF2_CORE_MEMORY["1"].values())
    assert report["nd0"]["mem_used_bytes"] == expected
    assert report["nd0"]["mem_total_bytes"] == 34_359_738_368
    assert sum(report[f"nd{d}"]["mem_used_bytes"] for d in range(12)) == report["runtime:vllm-llama4-scout"][
        "device_mem_used_bytes"]


def test_runtime_and_host_figures_are_reported(sampler, fake_monitor_env):
    fake_monitor_env()
    report = first_report(sampler)
    runtime = report["runtime:vllm-llama4-scout"]
    assert runtime["host_mem_used_bytes"] == 18_656_264_192
    assert runtime["exec_completed"] == 47 and runtime["exec_failed"] == 0 and runtime["exec_errors"] == 0
    assert runtime["exec_latency_p50_s"] == 0.02031
    assert (runtime["vcpu_user_pct"], runtime["vcpu_system_pct"]) == (41.37, 6.12)
    assert report["host"]["mem_total_bytes"] == INF2["system_data"]["memory_info"]["memory_total_bytes"]


def test_trn2_logical_cores_map_onto_their_devices(sampler, fake_monitor_env):
    fake_monitor_env(fixture=TRN2_FIXTURE)
    report = first_report(sampler)
    cores = [d for d in report if d.startswith("nc")]
    assert len(cores) == 64
    assert report["nc63"]["neuron_device_index"] == 15  # LNC=2: 4 logical cores per device
    assert sorted(d for d in report if d.startswith("nd")) == sorted(f"nd{i}" for i in range(16))
    assert sampler.device_info().model == "trainium2" and sampler.instance_type == "trn2.48xlarge"


def test_device_info_carries_instance_type_and_device_count(sampler, fake_monitor_env):
    fake_monitor_env()
    first_report(sampler)
    info = sampler.device_info()
    assert (info.kind, info.count, info.model, info.instance_type) == ("neuron", 12, "inferentia2", "inf2.48xlarge")


def test_reports_are_stamped_on_receipt(sampler, fake_monitor_env):
    fake_monitor_env()
    before = time.time_ns()
    sampler.open()
    assert sampler.wait_first_report(10)
    after = time.time_ns()
    assert before <= sampler.sample()[0].time_unix_ns <= after


def test_sample_returns_only_reports_that_arrived_since_the_last_call(sampler, fake_monitor_env):
    fake_monitor_env(vary=1)
    sampler.open()
    first = collect_until(sampler, lambda got: len({s.time_unix_ns for s in got}) >= 2)
    second = collect_until(sampler, lambda got: len({s.time_unix_ns for s in got}) >= 2)
    seen_first = {s.values["neuroncore_util_pct"] for s in first if s.device == "nc0"}
    seen_second = {s.values["neuroncore_util_pct"] for s in second if s.device == "nc0"}
    assert max(seen_first) < min(seen_second)  # nothing handed over twice
    assert max(s.time_unix_ns for s in first) < min(s.time_unix_ns for s in second)


def test_effective_flops_is_read_as_flops(sampler, fake_monitor_env):
    fake_monitor_env(mode="effective_flops")
    report = first_report(sampler)
    assert report["nc0"]["flops_per_s"] == INF2_CORES["0"]["flops"]


def test_null_system_section_is_tolerated(sampler, fake_monitor_env):
    fake_monitor_env(mode="null_system")
    report = first_report(sampler)
    assert "host" not in report and report["nc0"]["neuroncore_util_pct"] == INF2_CORES["0"]["neuroncore_utilization"]
    assert "mem_ecc_corrected" not in report["nd0"]


@pytest.mark.parametrize("mode", ["empty_runtimes", "null_runtime_data"])
def test_no_runtime_yields_only_system_figures(sampler, fake_monitor_env, mode):
    fake_monitor_env(mode=mode)
    report = first_report(sampler)
    assert not [d for d in report if d.startswith(("nc", "runtime:"))]
    assert report["host"]["mem_used_bytes"] > 0 and "mem_ecc_corrected" in report["nd0"]


def test_group_error_skips_only_that_group_and_is_logged_once(sampler, fake_monitor_env, caplog):
    caplog.set_level(logging.WARNING)
    fake_monitor_env(mode="group_error")
    sampler.open()
    got = collect_until(sampler, lambda got: len({s.time_unix_ns for s in got}) >= 3)
    runtime = [s.values for s in got if s.device == "runtime:vllm-llama4-scout"]
    assert runtime and all("device_mem_used_bytes" not in v and "exec_completed" in v for v in runtime)
    assert all("mem_used_bytes" not in s.values for s in got if s.device.startswith("nc"))
    assert len(warnings(caplog, "memory_used with error")) == 1


def test_runtime_with_error_is_skipped(sampler, fake_monitor_env, caplog):
    fake_monitor_env(mode="runtime_error")
    report = first_report(sampler)
    assert "runtime:broken" not in report and "runtime:vllm-llama4-scout" in report
    assert len(warnings(caplog, "runtime with error")) == 1


def test_idle_cores_report_zero_and_null_latencies_are_tolerated(sampler, fake_monitor_env):
    fake_monitor_env(mode="idle")
    report = first_report(sampler)
    assert {report[f"nc{i}"]["neuroncore_util_pct"] for i in range(24)} == {0.0}
    assert "exec_latency_p50_s" not in report["runtime:vllm-llama4-scout"]


def test_malformed_line_is_skipped_and_logged_once(sampler, fake_monitor_env, caplog):
    fake_monitor_env(mode="malformed", crash_after=2)  # two starts: two malformed lines
    sampler.open()
    got = collect_until(sampler, lambda got: len({s.time_unix_ns for s in got}) >= 4)
    assert len({s.time_unix_ns for s in got}) >= 4  # the good reports around it all came through
    assert len(warnings(caplog, "malformed JSON line")) == 1


def test_partial_line_before_a_crash_is_skipped(sampler, fake_monitor_env, caplog):
    fake_monitor_env(mode="partial", crash_after=1)
    sampler.open()
    collect_until(sampler, lambda got: len({s.time_unix_ns for s in got}) >= 2)
    assert len(warnings(caplog, "partial line")) == 1


def test_crashed_monitor_is_restarted_with_exponential_backoff(sampler, fake_monitor_env, caplog, tmp_path):
    caplog.set_level(logging.WARNING)
    starts = tmp_path / "starts"
    fake_monitor_env(crash_after=1, starts=starts)
    sampler.open()
    collect_until(sampler, lambda got: len({s.time_unix_ns for s in got}) >= 4)
    assert len(starts.read_text().splitlines()) >= 4
    delays = [m.split("restarting in ")[1].split("s")[0] for m in warnings(caplog, "exited with code 3")]
    assert delays[:3] == ["0.05", "0.10", "0.20"]
    assert "simulated crash" in warnings(caplog, "exited with code 3")[0]  # stderr tail is in the log line


def test_close_stops_the_monitor_process(fake_monitor_env):
    fake_monitor_env()
    s = NeuronSampler(INTERVAL_S, str(FAKE_NEURON_MONITOR))
    s.open()
    assert s.wait_first_report(10)
    monitors = [c for c in psutil.Process().children() if "fake_neuron_monitor" in " ".join(c.cmdline())]
    assert len(monitors) == 1
    s.close()
    assert not monitors[0].is_running()


def test_fake_monitor_writes_one_compact_report_per_line(fake_monitor_env, tmp_path):
    import subprocess

    config = tmp_path / "c.json"
    config.write_text(json.dumps(monitor_config(0.01)))
    fake_monitor_env(crash_after=2)
    out = subprocess.run([str(FAKE_NEURON_MONITOR), "-c", str(config)], capture_output=True, timeout=10)
    lines = out.stdout.decode().splitlines()
    assert out.returncode == 3 and len(lines) == 2
    assert json.loads(lines[0]) == INF2


def test_fixtures_match_the_shared_copies():
    shared = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "neuron"  # ../shared beside the repo
    if not shared.is_dir():
        pytest.skip(f"no shared fixtures at {shared}")
    for name in ("monitor-sample.json", "monitor-sample-trn2.json"):
        assert json.loads((shared / name).read_text()) == json.loads((INF2_FIXTURE.parent / name).read_text())
