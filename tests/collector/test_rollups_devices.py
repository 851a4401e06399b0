"""Device rollups per step: utilisation, peak memory, power and energy (counter or integrated power)."""

from __future__ import annotations

import pytest

from siliconbench.collector.rollups import Selection, Slo, load_figures, select_series
from tests.collector import rows


def figures(store, run_id):
    return load_figures(store, select_series(store, Selection(runs=(run_id,))), Slo())


def nvml_run(store, run_id: str, with_counter: bool):
    agent = f"gpu-{run_id}"
    store.insert("runs", [rows.run(run_id, agent)], f"r/{run_id}")
    store.insert("steps", [rows.step(run_id, agent, 0, 1, 0, 0.0, 10.0)], f"s/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, i, start_s=i, gaps_ms=(10,) * 99) for i in range(5)], run_id)
    samples = []
    for t in range(0, 11):
        for gpu, (util, power) in enumerate(((50.0, 300.0), (70.0, 500.0))):
            samples.append(rows.sample(run_id, agent, t, "nvml", str(gpu), "gpu_util_pct", util))
            samples.append(rows.sample(run_id, agent, t, "nvml", str(gpu), "power_w", power))
            samples.append(rows.sample(run_id, agent, t, "nvml", str(gpu), "mem_used_bytes", 1e9 * (gpu + 1) + t))
            if with_counter:  # 400 W steady: 400 J per second, in mJ
                samples.append(rows.sample(run_id, agent, t, "nvml", str(gpu), "energy_mj", 1e9 + t * 400_000.0))
    samples.append(rows.sample(run_id, agent, 20, "nvml", "0", "gpu_util_pct", 0.0))  # after the step: ignored
    store.insert("device_samples", samples, f"d/{run_id}")
    return agent


def test_gpu_step_uses_the_energy_counter_when_read(store, unique_id):
    nvml_run(store, unique_id, with_counter=True)
    fig = figures(store, unique_id)
    [node] = fig.nodes
    assert node.util_mean_pct == pytest.approx(60)
    assert node.mem_peak_bytes == pytest.approx(1e9 + 10 + 2e9 + 10)
    assert node.power_mean_w == pytest.approx(800)
    assert node.energy_method == "energy counter"
    assert node.energy_j == pytest.approx(2 * 400 * 10)          # two GPUs × 400 J/s × 10 s step
    assert node.j_per_output_token == pytest.approx(8000 / 500)  # 5 requests × 100 tokens


def test_gpu_step_without_counter_integrates_power(store, unique_id):
    nvml_run(store, unique_id, with_counter=False)
    [node] = figures(store, unique_id).nodes
    assert node.energy_method == "integrated power"
    assert node.energy_j == pytest.approx((300 + 500) * 10)


def test_neuron_utilisation_comes_from_neuroncores_and_no_energy_is_invented(store, unique_id):
    agent = f"neuron-{unique_id}"
    store.insert("runs", [rows.run(unique_id, agent)], f"r/{unique_id}")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0.0, 4.0)], f"s/{unique_id}")
    store.insert("requests", [rows.request(unique_id, agent, 0)], unique_id)
    samples = []
    for t in range(0, 5):
        samples += [rows.sample(unique_id, agent, t, "neuron", "nc0", "neuroncore_util_pct", 80.0),
                    rows.sample(unique_id, agent, t, "neuron", "nc1", "neuroncore_util_pct", 40.0),
                    rows.sample(unique_id, agent, t, "neuron", "nc0", "mem_used_bytes", 5e9),
                    rows.sample(unique_id, agent, t, "neuron", "nd0", "mem_used_bytes", 7e9),
                    rows.sample(unique_id, agent, t, "neuron", "runtime:vllm", "device_mem_used_bytes", 9e9),
                    rows.sample(unique_id, agent, t, "host", "host", "cpu_util_pct", 25.0)]
    store.insert("device_samples", samples, f"d/{unique_id}")
    [node] = figures(store, unique_id).nodes
    assert node.util_mean_pct == pytest.approx(60)
    assert node.mem_peak_bytes == pytest.approx(7e9)             # per device (nd*), not per core
    assert node.host_cpu_mean_pct == pytest.approx(25)
    assert node.energy_j is None and node.power_mean_w is None
    assert node.energy_method == "none: Neuron reports no power"


def test_each_gpu_has_its_share_of_joules_per_output_token(store, unique_id):
    nvml_run(store, unique_id, with_counter=True)
    fig = figures(store, unique_id)
    assert [(d.device, d.energy_method) for d in fig.devices] == [("0", "energy counter"), ("1", "energy counter")]
    assert [d.j_per_output_token for d in fig.devices] == pytest.approx([4000 / 500, 4000 / 500])


def test_devices_are_listed_in_natural_order(store, unique_id):
    agent = f"neuron-{unique_id}"
    store.insert("runs", [rows.run(unique_id, agent)], f"r/{unique_id}")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0.0, 2.0)], f"s/{unique_id}")
    store.insert("requests", [rows.request(unique_id, agent, 0)], unique_id)
    store.insert("device_samples", [rows.sample(unique_id, agent, 1, "neuron", device, "neuroncore_util_pct", 50.0)
                                    for device in ("nc10", "nd1", "nc2", "nd0", "nc1")], f"d/{unique_id}")
    assert [d.device for d in figures(store, unique_id).devices] == ["nc1", "nc2", "nc10", "nd0", "nd1"]


def counter_run(store, run_id: str, readings: list[tuple[float, float]]) -> None:
    """One GPU, a 10 s step from t=0 to t=10, and energy counter readings (t in s, joules so far)."""
    agent = f"gpu-{run_id}"
    store.insert("runs", [rows.run(run_id, agent)], f"r/{run_id}")
    store.insert("steps", [rows.step(run_id, agent, 0, 1, 0, 0.0, 10.0)], f"s/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, 0, gaps_ms=(10,) * 99)], run_id)
    store.insert("device_samples", [rows.sample(run_id, agent, t, "nvml", "0", "energy_mj", joules * 1e3)
                                    for t, joules in readings], f"d/{run_id}")


def test_step_energy_is_the_counter_interpolated_at_the_step_start_and_end(store, unique_id):
    # Readings at every half second past the whole: 1000 W from -0.5 to 0.5 and from 9.5 to 10.5, 200 W
    # between. The step (0..10) took 0.5 s x 1000 + 9 s x 200 + 0.5 s x 1000 = 2800 J; the rate inside the
    # step alone (200 W x 10 s = 2000 J) would miss the edges.
    power = {-0.5: 1000.0, 9.5: 1000.0}
    readings, joules = [], 0.0
    for k in range(12):
        t = k - 0.5
        readings.append((t, joules))
        joules += power.get(t, 200.0)
    counter_run(store, unique_id, readings)
    [device] = figures(store, unique_id).devices
    assert device.energy_method == "energy counter"
    assert device.energy_j == pytest.approx(2800)


def test_without_readings_around_the_boundaries_the_rate_inside_the_step_is_used_and_said(store, unique_id):
    counter_run(store, unique_id, [(t, 300.0 * t) for t in range(2, 9)])  # 300 W, read only inside the step
    [device] = figures(store, unique_id).devices
    assert device.energy_method == "energy counter (rate inside the step)"
    assert device.energy_j == pytest.approx(3000)


def test_without_a_reading_at_or_after_the_end_the_rate_inside_the_step_is_used_and_said(store, unique_id):
    # What a run's last step looked like when its end reading was shipped under no run: read before it
    # started and inside it, never after its end. The start alone proves nothing; the fallback says so.
    counter_run(store, unique_id, [(t, 300.0 * t) for t in range(-1, 10)])
    [device] = figures(store, unique_id).devices
    assert device.energy_method == "energy counter (rate inside the step)"
    assert device.energy_j == pytest.approx(3000)


def test_a_counter_that_went_backwards_is_not_read_as_negative_energy(store, unique_id):
    # Reset at a driver reload: read across the step, the counter ends about 3,660 J below where it started.
    # One reading inside the step gives no rate either, so the step has no energy, and says why.
    counter_run(store, unique_id, [(-1, 5000.0), (5, 10.0), (11, 610.0)])
    [device] = figures(store, unique_id).devices
    assert (device.energy_method, device.energy_j) == ("none: no power reading", None)


def test_a_counter_that_went_backwards_before_the_step_falls_back_to_its_rate_inside_the_step(store, unique_id):
    counter_run(store, unique_id, [(-1, 5000.0), (2, 10.0), (5, 310.0), (11, 910.0)])  # 100 W after the reset
    [device] = figures(store, unique_id).devices
    assert device.energy_method == "energy counter (rate inside the step)"
    assert device.energy_j == pytest.approx(1000)


def test_nodes_and_devices_come_in_the_order_of_their_sweep_points(store, unique_id):
    """The same order every time: JSON lists these rows as they come."""
    agent, loads = f"gpu-{unique_id}", (8, 1, 16, 2, 4, 32)
    store.insert("runs", [rows.run(unique_id, agent)], f"r/{unique_id}")
    store.insert("steps", [rows.step(unique_id, agent, k, c, 0, 10.0 * k, 10.0 * k + 5) for k, c in enumerate(loads)],
                 f"s/{unique_id}")
    store.insert("requests", [rows.request(unique_id, agent, k, step=k, concurrency=c, start_s=10.0 * k)
                              for k, c in enumerate(loads)], unique_id)
    store.insert("device_samples", [rows.sample(unique_id, agent, 10.0 * k + 1, "nvml", "0", "gpu_util_pct", 50.0)
                                    for k in range(len(loads))], f"d/{unique_id}")
    fig = figures(store, unique_id)
    assert [n.concurrency for n in fig.nodes] == sorted(loads)
    assert [d.concurrency for d in fig.devices] == sorted(loads)
