"""What the live page shows of a run, from rows of known values: per node the requests and errors stored,
the output throughput of its latest step, the client's saturation flag of its latest finished step, and its
devices' utilisation (mean over devices) and power (summed over devices) over the last seconds of samples;
once the run has ended, the report's verdict."""

from __future__ import annotations

import pytest

from siliconbench.collector.errors import RunNotFound
from siliconbench.collector.live import LIVE_WINDOW_S, live_run
from siliconbench.collector.schema import STEPS
from tests.collector import rows


def saturated_step(run_id: str, agent: str, step_no: int, start_s: float, end_s: float) -> list:
    return STEPS.row(run_id=run_id, agent_id=agent, step=step_no, concurrency=2, repetition=0,
                     start_time=rows.at(start_s), end_time=rows.at(end_s), requests=2, mode="closed", rate_rps=0.0,
                     agent_cpu_pct=97.0, loop_lag_p99_ms=40.0, client_saturated=True, block_size=0,
                     **{**rows.STEP_OK, "verdict": "client-limited"}, **rows.NO_TRACE_STEP)


def test_a_running_node_shows_its_latest_step_its_errors_and_its_devices_now(store, unique_id):
    run_id, agent = f"live-{unique_id}", f"gpu-node-{unique_id}"
    store.insert("runs", [rows.run(run_id, agent, scenario="A")], f"r/{run_id}")
    store.insert("nodes", [rows.node(agent, "p5.48xlarge")], f"n/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, i, step=0, start_s=i) for i in range(3)]
                 + [rows.request(run_id, agent, 3, step=0, start_s=3, error="timeout")]
                 # the latest step: 2 requests of 4 tokens each, from 10.0 s to 10.5 s + 130 ms
                 + [rows.request(run_id, agent, 10 + i, step=1, concurrency=2, start_s=10 + i / 2) for i in range(2)],
                 f"q/{run_id}")
    store.insert("steps", [rows.step(run_id, agent, 0, 1, 0, 0, 4), saturated_step(run_id, agent, 1, 10, 11)],
                 f"s/{run_id}")
    last = 30.0
    samples = [rows.sample(run_id, agent, last - LIVE_WINDOW_S - 1, "nvml", "0", "gpu_util_pct", 0.0),  # too old
               rows.sample(run_id, agent, last - LIVE_WINDOW_S - 1, "nvml", "0", "power_w", 999.0)]
    for t, (util0, util1, power0, power1) in ((last - 5, (50, 80, 300, 200)), (last, (70, 100, 500, 200))):
        samples += [rows.sample(run_id, agent, t, "nvml", "0", "gpu_util_pct", util0),
                    rows.sample(run_id, agent, t, "nvml", "1", "gpu_util_pct", util1),
                    rows.sample(run_id, agent, t, "nvml", "0", "power_w", power0),
                    rows.sample(run_id, agent, t, "nvml", "1", "power_w", power1),
                    rows.sample(run_id, agent, t, "host", "host", "cpu_util_pct", 40.0)]
    store.insert("device_samples", samples, f"d/{run_id}")

    run = live_run(store, run_id)

    assert (run.state, run.fleet, run.search, run.scenario, run.verdict) == ("running", False, False, "A", "")
    assert run.model == "meta-llama/Llama-4-Scout-17B-16E" and run.target == "http://vllm:8000"
    [node] = run.nodes
    assert (node.node_name, node.instance_type, node.requests, node.errors) == (agent, "p5.48xlarge", 6, 1)
    assert (node.step, node.steps_done, node.steps_total) == (1, 2, None)
    assert node.output_tokens_per_s == pytest.approx(8 / 0.63)
    assert (node.saturated, node.agent_cpu_pct) == (True, 97.0)
    assert node.device_util_pct == pytest.approx((60 + 90) / 2)   # each device's mean, averaged over devices
    assert node.power_w == pytest.approx(400 + 200)                # each device's mean, summed over devices
    assert node.host_cpu_pct == pytest.approx(40.0)


def test_a_node_without_accelerator_samples_shows_no_utilisation_or_power(store, unique_id):
    run_id, agent = f"live-cpu-{unique_id}", f"cpu-node-{unique_id}"
    store.insert("runs", [rows.run(run_id, agent, simulated=True), rows.run(run_id, agent, phase="end")], f"r/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, 0)], f"q/{run_id}")
    store.insert("device_samples", [rows.sample(run_id, agent, 1, "host", "host", "cpu_util_pct", 12.0)], f"d/{run_id}")

    run = live_run(store, run_id)

    assert run.state == "complete" and run.simulated
    assert run.verdict.startswith(("Publishable as is", "NOT publishable as is"))  # the report's, once it ended
    [node] = run.nodes
    assert (node.device_util_pct, node.power_w, node.host_cpu_pct, node.saturated) == (None, None, 12.0, None)
    assert run.to_json()["nodes"][0]["requests"] == 1  # what /api/live sends


def test_an_unknown_run_is_named_with_the_fix(store):
    with pytest.raises(RunNotFound, match=r"no run 'no-such-live-run'.*runs list"):
        live_run(store, "no-such-live-run")
