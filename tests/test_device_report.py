"""Device telemetry end to end: the real agent samples a scripted NVML stub (or the fake neuron-monitor)
while it loads the simulator, ships over gRPC to the collector on chDB, and `siliconbench-collector report`
states per step the utilisation, memory, power, energy and J/output token that were scripted.

Each run is `siliconbench-collector demo` (collector, simulator and agent, each a real process); the agent
finds the stub through LD_LIBRARY_PATH and the fake monitor on PATH, as it would find the real ones.

Tolerances: utilisation, memory and power are constant in the script, so every mean and percentile is
exact. Energy comes from the counter's rate between the first and last samples of a step (the stub's
counter grows at a scripted rate, deliberately not the scripted power, so the method shows in the number),
times the step's duration: the only error is the jitter between a poll's time stamp and the moment the
counter is read (the GIL can hold the sampler thread for a few ms), over a span of at least ~0.8 s at a
0.1 s interval — under 1.5 %, so 2 % is allowed.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.samplers.nvml_stub import build_stub, device, write_script
from tests.test_end_to_end import collector_cli, sql_rows

FAKE_NEURON_MONITOR = Path(__file__).parent / "agent" / "samplers" / "fake_neuron_monitor"
NEURON_FIXTURE = Path(__file__).parent / "agent" / "samplers" / "fixtures" / "monitor-sample.json"

CONCURRENCY = (1, 4)
REQUESTS_PER_STEP = 12
OUTPUT_TOKENS = 32
ENERGY_REL = 0.02  # see the module docstring
EXACT = 1e-9

# Two GPUs: (gpu_util %, power W, energy counter rate W, memory used bytes).
GPUS = ((80, 400.0, 410.0, 40_000_000_000), (40, 250.0, 260.0, 20_000_000_000))


def run_demo(workdir: Path, env: dict[str, str]) -> tuple[str, str]:
    """`siliconbench-collector demo` with the agent sampling every 0.1 s, in `workdir` (so the agent's spool
    is its own); returns the store and the run id."""
    store = f"chdb://{workdir}/data"
    result = subprocess.run(
        [sys.executable, "-m", "siliconbench.collector", "demo", "--store", store,
         "--concurrency", ",".join(map(str, CONCURRENCY)), "--requests-per-step", str(REQUESTS_PER_STEP),
         "--input-tokens", "32", "--output-tokens", str(OUTPUT_TOKENS), "--ttft-ms", "20", "--itl-ms", "10",
         "--sample-interval-s", "0.1"],
        capture_output=True, text=True, timeout=120, env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = next(line for line in result.stdout.splitlines() if " request rows stored for run " in line)
    return store, stored.split("for run ")[1].split(" ")[0]


def report(store: str, run_id: str, fmt: str) -> str:
    result = collector_cli("report", "--run", run_id, "--format", fmt, "--no-cost", "--store", store)
    assert result.returncode == 0, result.stderr
    return result.stdout


def step_facts(store: str, run_id: str) -> dict[int, tuple[float, int]]:
    """Per concurrency: the step's duration (s) and output tokens, straight from the stored rows."""
    rows = sql_rows(store, f"""
        SELECT any(s.concurrency), any(toUnixTimestamp64Nano(s.end_time) - toUnixTimestamp64Nano(s.start_time)) / 1e9,
               sum(r.output_tokens)
        FROM siliconbench.steps AS s
        INNER JOIN siliconbench.requests AS r ON r.run_id = s.run_id AND r.step = s.step
        WHERE s.run_id = '{run_id}' GROUP BY s.step ORDER BY s.step""")
    return {int(c): (float(step_s), int(tokens)) for c, step_s, tokens in rows}


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH" and not k.startswith("FAKE_NEURON_")}


@pytest.fixture(scope="module")
def nvml_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("device-report-nvml")
    lib = build_stub(tmp / "lib")
    script = tmp / "nvml-script"
    write_script(script, [device(i, gpu_util=util, power_mw=int(power * 1000), energy_rate_mw=int(rate * 1000),
                                 mem_used=mem, gpm=0) for i, (util, power, rate, mem) in enumerate(GPUS)])
    env = {**base_env(), "LD_LIBRARY_PATH": str(lib.parent), "NVML_STUB_SCRIPT": str(script)}
    store, run_id = run_demo(tmp, env)
    return (json.loads(report(store, run_id, "json")), report(store, run_id, "markdown"),
            step_facts(store, run_id))


@pytest.fixture(scope="module")
def neuron_run(tmp_path_factory):
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("a real libnvidia-ml is installed: its GPUs would be sampled beside the fake Neuron devices")
    tmp = tmp_path_factory.mktemp("device-report-neuron")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "neuron-monitor").symlink_to(FAKE_NEURON_MONITOR)
    env = {**base_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    store, run_id = run_demo(tmp, env)
    return (json.loads(report(store, run_id, "json")), report(store, run_id, "markdown"),
            step_facts(store, run_id))


def devices_at(doc: dict, concurrency: int) -> dict[str, dict]:
    return {d["device"]: d for d in doc["devices"] if d["concurrency"] == concurrency}


def node_at(doc: dict, concurrency: int) -> dict:
    [node] = [n for n in doc["nodes"] if n["concurrency"] == concurrency]
    return node


# ---- NVML stub ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_gpu_utilisation_memory_and_power_per_step_are_the_scripted_values(nvml_run, concurrency):
    doc, _, _ = nvml_run
    gpus = devices_at(doc, concurrency)
    assert sorted(gpus) == ["0", "1"]
    for i, (util, power, _, mem) in enumerate(GPUS):
        gpu = gpus[str(i)]
        assert gpu["util_mean_pct"] == pytest.approx(util, rel=EXACT)
        assert gpu["util_pct"] == pytest.approx([util, util], rel=EXACT)  # p50, p90
        assert gpu["mem_peak_bytes"] == pytest.approx(mem, rel=EXACT)
        assert gpu["power_mean_w"] == pytest.approx(power, rel=EXACT)
    node = node_at(doc, concurrency)
    assert node["util_mean_pct"] == pytest.approx(60, rel=EXACT)  # both GPUs' samples pooled, as many of each
    assert node["util_pct"] == pytest.approx([60, 80], rel=EXACT)
    assert node["mem_peak_bytes"] == pytest.approx(sum(g[3] for g in GPUS), rel=EXACT)
    assert node["power_mean_w"] == pytest.approx(sum(g[1] for g in GPUS), rel=EXACT)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_gpu_energy_per_step_comes_from_the_energy_counter(nvml_run, concurrency):
    doc, _, steps = nvml_run
    step_s, _ = steps[concurrency]
    gpus = devices_at(doc, concurrency)
    for i, (_, _, rate_w, _) in enumerate(GPUS):
        assert gpus[str(i)]["energy_method"] == "energy counter"
        assert gpus[str(i)]["energy_j"] == pytest.approx(rate_w * step_s, rel=ENERGY_REL)
    node = node_at(doc, concurrency)
    assert node["energy_method"] == "energy counter"
    assert node["energy_j"] == pytest.approx(sum(g[2] for g in GPUS) * step_s, rel=ENERGY_REL)


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_joules_per_output_token_is_step_energy_over_the_steps_tokens(nvml_run, concurrency):
    doc, _, steps = nvml_run
    step_s, tokens = steps[concurrency]
    assert tokens == REQUESTS_PER_STEP * OUTPUT_TOKENS
    expected = sum(g[2] for g in GPUS) * step_s / tokens
    assert node_at(doc, concurrency)["j_per_output_token"] == pytest.approx(expected, rel=ENERGY_REL)
    gpu0 = devices_at(doc, concurrency)["0"]
    assert gpu0["j_per_output_token"] == pytest.approx(GPUS[0][2] * step_s / tokens, rel=ENERGY_REL)


def test_markdown_shows_each_gpu_and_the_node_per_step_with_the_energy_method(nvml_run):
    doc, markdown, _steps = nvml_run
    assert "## 7. Devices per step: each device and the node" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "energy counter" in line]
    gpu0 = [r for r in rows if "| GPU 0 |" in r]
    node = [r for r in rows if "| node |" in r and "| 60% | 60% | 80% | 60.0 GB | 650 |" in r]
    assert len(gpu0) == len(CONCURRENCY) and all("| 80% | 80% | 80% | 40.0 GB | 400 |" in r for r in gpu0)
    assert len(node) == len(CONCURRENCY)
    detail = next(t for t in doc["tables"] if t["key"] == "device_detail")
    assert [r[2] for r in detail["rows"]] == ["GPU 0", "GPU 1", "node"] * len(CONCURRENCY)


# ---- fake neuron-monitor ------------------------------------------------------------------------------

def neuron_fixture() -> tuple[dict[str, float], dict[str, float]]:
    """Per NeuronCore: utilisation and memory (the sum of its usage breakdown) in the replayed report."""
    doc = json.loads(NEURON_FIXTURE.read_text())
    report_ = doc["neuron_runtime_data"][0]["report"]
    util = {f"nc{i}": c["neuroncore_utilization"]
            for i, c in report_["neuroncore_counters"]["neuroncores_in_use"].items()}
    breakdown = report_["memory_used"]["neuron_runtime_used_bytes"]["usage_breakdown"]["neuroncore_memory_usage"]
    mem = {f"nc{i}": float(sum(parts.values())) for i, parts in breakdown.items()}
    return util, mem


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_neuron_utilisation_and_memory_per_step_are_the_replayed_values(neuron_run, concurrency):
    doc, _, _ = neuron_run
    util, mem = neuron_fixture()
    devices = devices_at(doc, concurrency)
    assert {d for d in devices if d.startswith("nc")} == set(util)
    for core, value in util.items():
        assert devices[core]["util_mean_pct"] == pytest.approx(value, rel=EXACT)
        assert devices[core]["util_pct"] == pytest.approx([value, value], rel=EXACT)
    for i in range(len(util) // 2):  # inf2: two NeuronCores per device; nd* carries the device's memory
        assert devices[f"nd{i}"]["mem_peak_bytes"] == pytest.approx(mem[f"nc{2 * i}"] + mem[f"nc{2 * i + 1}"])
    node = node_at(doc, concurrency)
    ordered = sorted(util.values())
    assert node["util_mean_pct"] == pytest.approx(statistics.fmean(ordered), rel=EXACT)
    # every core reports in every report, so each value appears equally often: p50 is the median of the
    # 24 values, p90 (interpolated at 0.9 × (24k − 1)) falls on the 22nd smallest for any k ≥ 2 reports
    assert node["util_pct"] == pytest.approx([statistics.median(ordered), ordered[21]], rel=EXACT)
    assert node["mem_peak_bytes"] == pytest.approx(sum(mem.values()))  # per device (nd*), not per core twice


@pytest.mark.parametrize("concurrency", CONCURRENCY)
def test_neuron_states_no_power_and_invents_no_energy(neuron_run, concurrency):
    doc, _, _ = neuron_run
    for d in devices_at(doc, concurrency).values():
        assert (d["power_mean_w"], d["energy_j"], d["j_per_output_token"]) == (None, None, None)
        assert d["energy_method"] == "none: Neuron reports no power"
    node = node_at(doc, concurrency)
    assert (node["power_mean_w"], node["energy_j"], node["j_per_output_token"]) == (None, None, None)
    assert node["energy_method"] == "none: Neuron reports no power"


def test_neuron_node_is_described_from_neuron_monitor(neuron_run):
    doc, markdown, _ = neuron_run
    [series] = doc["series"]
    assert (series["instance_type"], series["accelerators"]) == ("inf2.48xlarge", "12× inferentia2")
    rows = [line for line in markdown.splitlines() if "| NeuronCore 0 |" in line or "| node |" in line]
    assert rows and all("| – | – | – | none: Neuron reports no power |" in r for r in rows)
