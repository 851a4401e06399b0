"""The device check (scripts/device_check.sh, issue 17) up to the point a real driver is needed.

Sample files are recorded by scripts/device_sample.py, the agent's SamplerRunner and NvmlSampler,
against the C stub of libnvidia-ml.so.1 (one process per phase, as the check runs them); a few tests then
break one property of a recorded file by hand. scripts/device_analyse.py must pass the consistent
recording and name each broken property with a FAIL line and exit 1.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.samplers.nvml_stub import build_stub, device, write_script

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "scripts" / "device_sample.py"
ANALYSE = REPO / "scripts" / "device_analyse.py"
CHECK = REPO / "scripts" / "device_check.sh"
PHASE_S = 1.0
POWER_MW = 400_000
BASE_MJ = 9_000_000_000
RATE_LINE = re.compile(r"GPU (?P<gpu>\d+) counter rate (?P<rate>[\d.]+) W vs mean power (?P<power>[\d.]+) W: "
                       r"(?P<rel>[-+][\d.]+) %")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "NVML_STUB_SCRIPT", "OUT")}
    env["PYTHONPATH"] = str(REPO / "src")
    return env


@pytest.fixture(scope="module")
def stub(tmp_path_factory) -> Path:
    return build_stub(tmp_path_factory.mktemp("device-check-stub"))


@pytest.fixture
def record(stub: Path, tmp_path: Path):
    """Record one phase of 10 Hz samples from the stub scripted with `devices`; returns the file."""

    def run(phase: str, devices: list[dict]) -> Path:
        script, out = tmp_path / f"script-{phase}", tmp_path / f"samples-{phase}.jsonl"
        write_script(script, devices)
        env = {**clean_env(), "LD_LIBRARY_PATH": str(stub.parent), "NVML_STUB_SCRIPT": str(script)}
        proc = subprocess.run([sys.executable, str(SAMPLE), "--phase", phase, "--seconds", str(PHASE_S),
                               "--interval-s", "0.1", "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return out

    return run


def analyse(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ANALYSE), *map(str, files)], capture_output=True, text=True,
                          env=clean_env(), timeout=60)


def section_row(result: subprocess.CompletedProcess, title: str, starts: str) -> list[str]:
    """The one table row starting with `starts` in the output section whose "== ... ==" title holds `title`."""
    sections = result.stdout.split("\n== ")
    [text] = [s for s in sections if title in s.splitlines()[0]]
    [row] = [line.split() for line in text.splitlines() if line.startswith(starts)]
    return row


def fails(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL")]


def gpus(energy_mj: int = BASE_MJ, rate_mw: int = POWER_MW) -> list[dict]:
    """Two H100-like GPUs; GPU 1 has no temperature reading and no GPM (each reported once)."""
    return [device(0, power_mw=POWER_MW, energy_mj=energy_mj, energy_rate_mw=rate_mw),
            device(1, power_mw=POWER_MW, energy_mj=energy_mj, energy_rate_mw=rate_mw, unsupported="temp,gpm")]


def rewrite(path: Path, change) -> Path:
    """Apply `change(line) -> line | [lines] | None` to every JSON line of a recorded file (None drops it)."""
    out = []
    for raw in path.read_text().splitlines():
        changed = change(json.loads(raw))
        out += changed if isinstance(changed, list) else [changed] if changed is not None else []
    path.write_text("".join(json.dumps(line) + "\n" for line in out))
    return path


# ---- a consistent recording ----------------------------------------------------------------------------

def test_consistent_idle_and_load_recordings_pass_every_check(record):
    idle = record("idle", gpus())
    load = record("load", gpus(energy_mj=BASE_MJ + 10**9))  # the counter only grows between the phases
    result = analyse(idle, load)
    assert result.returncode == 0, result.stdout
    assert fails(result) == []
    assert "OK: 0 check(s) failed" in result.stdout


def test_the_collectors_device_rollups_state_the_same_figures(record):
    result = analyse(record("idle", gpus()))
    assert "PASS the collector states figures for 2 of 2 (step, device) pairs" in result.stdout, result.stdout
    assert "PASS the collector's figures agree with the ones above within 1 %" in result.stdout
    row = section_row(result, "through the collector", "idle  GPU 0  ")
    assert float(row[5]) == pytest.approx(400.0)  # mean power W
    assert row[-2:] == ["energy", "counter"]


def test_unsupported_fields_are_accepted_when_reported_once(record):
    result = analyse(record("idle", gpus()))
    table = {line.split()[0] + " " + line.split()[1]: line for line in result.stdout.splitlines()
             if line.startswith(("temperature", "GPM SM"))}
    assert "unsupported" in table["temperature temperature_c"]
    assert "unsupported" in table["GPM SM"]
    assert result.returncode == 0, result.stdout


def test_gpm_refused_at_its_first_read_counts_as_reported_unsupported(record):
    path = record("idle", gpus())

    def gpm_refused(line):  # as NvmlSampler logs a GPM read that fails with NoPermission
        if line["kind"] == "sample" and line["device"] == "0":
            line["values"] = {k: v for k, v in line["values"].items() if not k.endswith("_active_pct")}
        if line["kind"] == "summary":
            return [{"kind": "log", "level": "INFO", "logger": "siliconbench.agent.samplers.nvml",
                     "message": "nvml: GPU 0: gpm not supported (Insufficient Permissions); skipped for the rest "
                                "of the run"}, line]
        return line

    result = analyse(rewrite(path, gpm_refused))
    assert result.returncode == 0, result.stdout
    assert section_row(result, "Fields", "GPM SM")[-2:] == ["unsupported", "unsupported"]  # GPU 0, GPU 1


def test_step_figures_state_the_scripted_power_and_the_counters_energy(record):
    path = record("idle", gpus(rate_mw=POWER_MW))
    stamps = [line["time_unix_ns"] for line in map(json.loads, path.read_text().splitlines())
              if line["kind"] == "sample"]
    step_s = (max(stamps) - min(stamps)) / 1e9  # the step: first to last poll (printed rounded to 0.1 s)
    row = section_row(analyse(path), "Device figures per step", "idle  GPU 0  ")
    power_w, energy_j = float(row[8]), float(row[9])
    assert power_w == pytest.approx(400.0)
    assert energy_j == pytest.approx(400.0 * step_s, rel=0.02)


# ---- each broken property is named ---------------------------------------------------------------------

def test_a_counter_that_falls_between_phases_fails_the_monotonic_check(record):
    idle = record("idle", gpus(energy_mj=BASE_MJ))
    load = record("load", gpus(energy_mj=BASE_MJ - 10**9))
    result = analyse(idle, load)
    assert result.returncode == 1
    assert any("GPU 0 energy counter monotonic" in line and "fell" in line for line in fails(result)), result.stdout
    assert not any("counter rate" in line for line in fails(result))  # each phase's own rate is still right


def test_a_counter_rate_20_percent_below_the_power_readings_fails(record):
    result = analyse(record("idle", gpus(rate_mw=int(POWER_MW * 0.8))))
    assert result.returncode == 1
    rates = {m["gpu"]: (float(m["rate"]), float(m["power"]), float(m["rel"])) for line in fails(result)
             if (m := RATE_LINE.search(line))}
    assert sorted(rates) == ["0", "1"], result.stdout
    for rate, power, rel in rates.values():
        # The stub's counter runs on its own clock: the poll stamps' jitter moves the rate by well under 2 %.
        assert (rate, power, rel) == (pytest.approx(320, rel=0.02), pytest.approx(400), pytest.approx(-20, abs=2))


def test_a_counter_rate_5_percent_off_the_power_readings_passes(record):
    result = analyse(record("idle", gpus(rate_mw=int(POWER_MW * 1.05))))
    assert result.returncode == 0, result.stdout


def test_a_field_neither_read_nor_reported_unsupported_fails(record):
    path = record("idle", gpus())
    rewrite(path, lambda line: None if "temperature not supported" in line.get("message", "") else line)
    result = analyse(path)
    assert result.returncode == 1
    assert any("GPU 1 temperature_c never read" in line for line in fails(result)), result.stdout


def test_a_field_read_in_only_some_polls_fails(record):
    path = record("idle", gpus())

    def drop_power_of_poll_3(line):
        if line["kind"] == "sample" and line["poll"] == 3 and line["device"] == "0":
            line["values"].pop("power_w")
        return line

    result = analyse(rewrite(path, drop_power_of_poll_3))
    assert any("GPU 0 power_w read in only" in line for line in fails(result)), result.stdout


def test_a_poll_whose_devices_carry_different_timestamps_fails(record):
    path = record("idle", gpus())

    def split_poll_2(line):
        if line["kind"] == "sample" and line["poll"] == 2 and line["device"] == "1":
            line["time_unix_ns"] += 1_000_000
        return line

    result = analyse(rewrite(path, split_poll_2))
    assert any("1 with more than one timestamp" in line for line in fails(result)), result.stdout


def test_sampler_cpu_over_3_percent_of_a_core_fails(record):
    path = record("idle", gpus())

    def busy(line):
        if line["kind"] == "summary":
            line["process_cpu_s"] = 0.05 * line["wall_s"]
        return line

    result = analyse(rewrite(path, busy))
    assert any("5.00 % of a core" in line for line in fails(result)), result.stdout


# ---- without a driver ----------------------------------------------------------------------------------

def test_analysing_a_file_that_is_not_a_recording_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "samples.jsonl"
    bad.write_text('{"kind": "sample"}\n')
    result = analyse(bad)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ")


@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None, reason="a real NVIDIA driver is installed")
def test_sampling_without_a_driver_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SAMPLE), "--phase", "idle", "--seconds", "1", "--out",
                           str(tmp_path / "s.jsonl")], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: NVML unavailable: libnvidia-ml.so.1 not found (no NVIDIA driver on "
                                   "this node, or the container runtime did not mount it)")


@pytest.mark.timing
@pytest.mark.skipif(ctypes.util.find_library("nvidia-ml") is not None, reason="a real NVIDIA driver is installed")
def test_the_device_check_without_a_driver_fails_at_once_in_one_line(tmp_path):
    started = time.monotonic()
    proc = subprocess.run(["bash", str(CHECK)], capture_output=True, text=True,
                          env={**clean_env(), "OUT": str(tmp_path / "out")}, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "device check: no NVIDIA driver found (libnvidia-ml.so.1 does not load): run this on a GPU machine, "
        "see docs/device-check.md"]
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out").exists()  # nothing was started
