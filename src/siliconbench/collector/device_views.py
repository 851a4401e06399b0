"""The device views (documented in collector/views.py: step_energy, device_rollups, node_rollups, node_sweep),
each a SELECT with a `where` over run_id applied to every table it reads, as collector/step_views.py does for
the request figures: the views are these with `where` = "1", a report runs them with its runs' filter, so it
joins its own runs' samples to their steps, not every sample in the store."""

from __future__ import annotations

from siliconbench.collector.schema import KEPT_DEVICES, KEPT_NODES, Table
from siliconbench.collector.step_views import ALL, rollups_select


def _counter_at(name: str, instant_ns: str) -> str:
    """SELECT items giving `counter_<name>_mj`: the counter at `instant_ns`, interpolated between the last
    reading at or before it and the first at or after it; NULL unless both exist."""
    before, after = f"{name}_before", f"{name}_after"
    t0, v0 = f"tupleElement(c.points[{before}], 1)", f"tupleElement(c.points[{before}], 2)"
    t1, v1 = f"tupleElement(c.points[{after}], 1)", f"tupleElement(c.points[{after}], 2)"
    return (f"arrayLastIndex(p -> p.1 <= {instant_ns}, c.points) AS {before},\n"
            f"    arrayFirstIndex(p -> p.1 >= {instant_ns}, c.points) AS {after},\n"
            f"    if({before} = 0 OR {after} = 0, NULL,\n"
            f"       if({t1} = {t0}, {v0}, {v0} + ({v1} - {v0}) * ({instant_ns} - {t0}) / ({t1} - {t0})))"
            f" AS counter_{name}_mj")


# Each device sample with the step it fell in: the last step of its node that started at or before it
# (a node's steps never overlap), kept when the step had not ended yet (WHERE d.time <= st.end_time).
def _node_samples(where: str) -> str:
    """`where` for device_samples, narrowed to its nodes (the table's key starts with agent_id): every sample of
    those nodes in the run, as energy needs the readings around each step's boundaries."""
    return f"{where} AND agent_id IN (SELECT agent_id FROM {{db}}.steps WHERE {where})"


def _step_samples(where: str) -> str:
    """`where` for device_samples, narrowed by the key (agent_id, time) to the nodes' steps' span: what the step
    figures read, and what the kept ones are checked against (_counted)."""
    return (f"{_node_samples(where)} AND time BETWEEN (SELECT min(start_time) FROM {{db}}.steps WHERE {where}) "
            f"AND (SELECT max(end_time) FROM {{db}}.steps WHERE {where})")


def _samples_in_steps(where: str) -> str:
    return f"""(SELECT * FROM {{db}}.device_samples WHERE {_step_samples(where)}) AS d
ASOF INNER JOIN (
    SELECT run_id, agent_id, step, concurrency, repetition, mode, rate_rps, start_time, end_time,
           (toUnixTimestamp64Nano(end_time) - toUnixTimestamp64Nano(start_time)) / 1e9 AS step_s
    FROM {{db}}.steps WHERE {where}
) AS st ON d.run_id = st.run_id AND d.agent_id = st.agent_id AND d.time >= st.start_time"""

# Per step x device with an energy counter: the joules between the step's start and end instants.
def step_energy_select(where: str) -> str:
    """Per step x device with an energy counter: the joules between the step's start and end instants."""
    return f"""
SELECT st.run_id AS run_id, st.agent_id AS agent_id, st.step AS step, c.source AS source, c.device AS device,
    {_counter_at("start", "st.start_ns")},
    {_counter_at("end", "st.end_ns")},
    if(counter_end_mj >= counter_start_mj, (counter_end_mj - counter_start_mj) / 1e3, NULL) AS energy_j
FROM (
    SELECT run_id, agent_id, step, toUnixTimestamp64Nano(start_time) AS start_ns,
           toUnixTimestamp64Nano(end_time) AS end_ns
    FROM {{db}}.steps WHERE {where}
) AS st
INNER JOIN (
    SELECT run_id, agent_id, source, device, arraySort(groupArray((toUnixTimestamp64Nano(time), value))) AS points
    FROM {{db}}.device_samples
    WHERE metric = 'energy_mj' AND {_node_samples(where)}
    GROUP BY run_id, agent_id, source, device
) AS c ON st.run_id = c.run_id AND st.agent_id = c.agent_id"""

def _device_figures(where: str) -> str:
    """Per step x device: utilisation, memory, power and energy (module docstring of collector/views.py)."""
    return f"""
WITH metric IN ('gpu_util_pct', 'neuroncore_util_pct') AS is_util, metric = 'energy_mj' AS is_energy
SELECT st.run_id AS run_id, st.agent_id AS agent_id, st.step AS step,
    st.concurrency AS concurrency, st.repetition AS repetition, st.mode AS mode, st.rate_rps AS rate_rps,
    st.step_s AS step_s, d.source AS source, d.device AS device,
    countIf(is_util) AS util_samples,
    avgIf(value, is_util) AS util_mean_pct,
    quantilesIf(0.5, 0.9)(value, is_util) AS util_pct,
    maxIf(value, metric = 'mem_used_bytes') AS mem_peak_bytes,
    countIf(metric = 'power_w') AS power_samples,
    avgIf(value, metric = 'power_w') AS power_mean_w,
    countIf(is_energy) AS energy_samples,
    (argMaxIf(value, time, is_energy) - argMinIf(value, time, is_energy)) / 1e3 AS counter_delta_j,
    (toUnixTimestamp64Nano(maxIf(time, is_energy)) - toUnixTimestamp64Nano(minIf(time, is_energy))) / 1e9 AS counter_span_s,
    any(b.energy_j) AS boundary_energy_j,
    multiIf(boundary_energy_j IS NOT NULL, 'energy counter',
            energy_samples >= 2 AND counter_span_s > 0, 'energy counter (rate inside the step)',
            power_samples > 0, 'integrated power',
            source = 'neuron', 'none: Neuron reports no power',
            'none: no power reading') AS energy_method,
    multiIf(energy_method = 'energy counter', boundary_energy_j,
            energy_method = 'energy counter (rate inside the step)', counter_delta_j / counter_span_s * step_s,
            energy_method = 'integrated power', power_mean_w * step_s, NULL) AS energy_j
FROM {_samples_in_steps(where)}
LEFT JOIN ({step_energy_select(where)}) AS b
    ON b.run_id = st.run_id AND b.agent_id = st.agent_id AND b.step = st.step AND b.source = d.source
       AND b.device = d.device
WHERE d.time <= st.end_time
  AND (d.source = 'nvml' OR (d.source = 'neuron' AND (startsWith(d.device, 'nc') OR startsWith(d.device, 'nd'))))
GROUP BY st.run_id, st.agent_id, st.step, st.concurrency, st.repetition, st.mode, st.rate_rps, st.step_s, d.source,
    d.device"""

# Node figures: utilisation pooled over every accelerator sample (NVML GPUs; Neuron: NeuronCores only),
# memory and power summed over devices (Neuron memory from nd* devices), energy summed over devices.
def _node_figures(where: str) -> str:
    return f"""
SELECT u.run_id AS run_id, u.agent_id AS agent_id, u.step AS step, u.concurrency AS concurrency,
    u.mode AS mode, u.rate_rps AS rate_rps, u.repetition AS repetition, u.step_s AS step_s, u.util_mean_pct AS util_mean_pct, u.util_pct AS util_pct,
    u.host_cpu_mean_pct AS host_cpu_mean_pct,
    e.devices AS devices, e.sources AS sources, e.mem_peak_bytes AS mem_peak_bytes,
    e.power_mean_w AS power_mean_w, e.energy_j AS energy_j, e.energy_method AS energy_method
FROM (
    WITH metric IN ('gpu_util_pct', 'neuroncore_util_pct') AS is_util
    SELECT st.run_id AS run_id, st.agent_id AS agent_id, st.step AS step,
        st.concurrency AS concurrency, st.repetition AS repetition, st.mode AS mode, st.rate_rps AS rate_rps,
        st.step_s AS step_s, avgIf(value, is_util) AS util_mean_pct, quantilesIf(0.5, 0.9)(value, is_util) AS util_pct,
        avgIf(value, d.source = 'host' AND metric = 'cpu_util_pct') AS host_cpu_mean_pct
    FROM {_samples_in_steps(where)}
    WHERE d.time <= st.end_time
    GROUP BY st.run_id, st.agent_id, st.step, st.concurrency, st.repetition, st.mode, st.rate_rps, st.step_s
) AS u
LEFT JOIN (
    SELECT run_id, agent_id, step,
        countIf(NOT (source = 'neuron' AND startsWith(device, 'nd'))) AS devices,
        groupUniqArray(source) AS sources,
        sumIf(mem_peak_bytes, NOT (source = 'neuron' AND startsWith(device, 'nc'))) AS mem_peak_bytes,
        if(sum(power_samples) > 0, sumIf(power_mean_w, power_samples > 0), NULL) AS power_mean_w,
        if(countIf(energy_j IS NOT NULL) > 0, sumIf(energy_j, energy_j IS NOT NULL), NULL) AS energy_j,
        if(countIf(energy_j IS NOT NULL) > 0,
           arrayStringConcat(arraySort(groupUniqArrayIf(energy_method, energy_j IS NOT NULL)), ' + '),
           any(energy_method)) AS energy_method
    FROM ({_device_figures(where)})
    GROUP BY run_id, agent_id, step
    SETTINGS prefer_column_name_to_alias = 1
) AS e USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1"""


# Kept (collector/kept.py) once the run ended, valid while the node's samples in the run are as many as then.
def counted_samples(where: str) -> str:
    """Per node of `where`: its samples in the run (the version of its kept rows)."""
    return (f"SELECT run_id, agent_id, count() AS run_samples FROM {{db}}.device_samples WHERE {_node_samples(where)} "
            "GROUP BY run_id, agent_id")


def _kept(table: str, where: str, checked: bool = False) -> str:
    if checked:  # the reader found every node's rows hold (need_compute)
        return f"SELECT * FROM {{db}}.{table} FINAL WHERE {where}"
    return f"""SELECT k.* FROM (SELECT * FROM {{db}}.{table} FINAL WHERE {where}) AS k
    INNER JOIN ({counted_samples(where)}) AS c
        ON k.run_id = c.run_id AND k.agent_id = c.agent_id AND k.run_samples = c.run_samples"""


def _kept_or_computed(table: Table, computed, where: str, compute: bool) -> str:
    """`table`'s rows that hold, and the other nodes' computed now (`computed`, a select of `where`)."""
    columns = ", ".join(n for n in table.names if n not in ("run_samples", "kept_at"))
    kept = _kept(table.name, where, checked=not compute)
    rest = f"{where} AND (run_id, agent_id) NOT IN (SELECT run_id, agent_id FROM ({kept}))"
    return f"SELECT {columns} FROM ({kept})" + (f"\nUNION ALL\nSELECT {columns} FROM ({computed(rest)})" if compute else "")


def keep_select(table: Table, where: str) -> str:
    """The rows of `table` (kept_devices, kept_nodes) for the nodes of `where`, computed now."""
    computed = _device_figures if table is KEPT_DEVICES else _node_figures
    return f"""SELECT {', '.join(table.names)} FROM (
    SELECT f.*, c.run_samples AS run_samples, now64(9, 'UTC') AS kept_at FROM ({computed(where)}) AS f
    INNER JOIN ({counted_samples(where)}) AS c ON f.run_id = c.run_id AND f.agent_id = c.agent_id)"""


UTIL_METRICS = ("gpu_util_pct", "neuroncore_util_pct")
_UTIL = ", ".join(f"'{m}'" for m in UTIL_METRICS)


def timeline_select(where: str) -> str:
    """Per node of `where` and second with a reading: the mean accelerator utilisation, and the node's power
    (mean per device x devices); NaN where the second has no such reading."""
    return f"""SELECT run_id, agent_id, toUnixTimestamp(toStartOfSecond(time)) AS second,
       avgIf(value, metric IN ({_UTIL})) AS util,
       if(countIf(metric = 'power_w') = 0, nan,
          avgIf(value, metric = 'power_w') * uniqExactIf(device, metric = 'power_w')) AS power
FROM {{db}}.device_samples
WHERE {_node_samples(where)}
GROUP BY run_id, agent_id, second
HAVING countIf(metric IN ({_UTIL}) OR metric = 'power_w') > 0"""


def timeline_read(where: str, compute: bool = True) -> str:
    """(run_id, agent_id, second, util, power) in order: kept (`compute` False: the reader found every node
    kept) or computed from the samples."""
    if compute:
        return f"SELECT * FROM ({timeline_select(where)}) ORDER BY run_id, agent_id, second"
    return (f"SELECT run_id, agent_id, p.1, p.2, p.3 FROM {{db}}.kept_timelines FINAL ARRAY JOIN points AS p "
            f"WHERE {where} ORDER BY run_id, agent_id, p.1")


def keep_timeline_select(where: str) -> str:
    """kept_timelines rows for the nodes of `where`, computed now: one per node with samples, however few (a
    node's kept rows are whole once its timeline row is stored: collector/kept.py keeps it last)."""
    return f"""SELECT c.run_id, c.agent_id, c.run_samples, now64(9, 'UTC'), t.points
FROM ({counted_samples(where)}) AS c
LEFT JOIN (SELECT run_id, agent_id, arraySort(groupArray((second, util, power))) AS points
           FROM ({timeline_select(where)}) GROUP BY run_id, agent_id) AS t USING (run_id, agent_id)
SETTINGS join_use_nulls = 0"""


def device_rollups_select(where: str, compute: bool = True) -> str:
    """Per step x device (of `where`): kept where they hold, else computed; `compute` False: kept ones only."""
    return _kept_or_computed(KEPT_DEVICES, _device_figures, where, compute)


def node_rollups_select(where: str, compute: bool = True, steps_kept: bool = False) -> str:
    """Per step x node: the node's figures (kept or computed), energy per output token over the step's tokens."""
    return f"""
SELECT n.*, r.tokens_out AS tokens_out, if(r.tokens_out > 0, n.energy_j / r.tokens_out, NULL) AS j_per_output_token
FROM ({_kept_or_computed(KEPT_NODES, _node_figures, where, compute)}) AS n
LEFT JOIN (SELECT run_id, agent_id, step, tokens_out FROM ({rollups_select(where, steps_kept)})) AS r
    USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1"""

def node_sweep_select(where: str, compute: bool = True, steps_kept: bool = False) -> str:
    """Per run x node x sweep point: node figures, median of the repetitions."""
    return f"""
SELECT run_id, agent_id, mode, concurrency, rate_rps, count() AS repetitions,
    median(util_mean_pct) AS util_mean_pct, medianForEach(util_pct) AS util_pct,
    median(host_cpu_mean_pct) AS host_cpu_mean_pct, any(devices) AS devices,
    max(mem_peak_bytes) AS mem_peak_bytes, median(power_mean_w) AS power_mean_w,
    median(energy_j) AS energy_j, min(energy_j) AS energy_j_min, max(energy_j) AS energy_j_max,
    median(j_per_output_token) AS j_per_output_token, any(energy_method) AS energy_method
FROM ({node_rollups_select(where, compute, steps_kept)})
GROUP BY run_id, agent_id, mode, concurrency, rate_rps
SETTINGS prefer_column_name_to_alias = 1"""


def _view(name: str, select: str) -> str:
    return f"CREATE OR REPLACE VIEW {{db}}.{name} AS {select}"


DEVICE_VIEWS: dict[str, str] = {
    "step_energy": _view("step_energy", step_energy_select(ALL)),
    "device_rollups": _view("device_rollups", device_rollups_select(ALL)),
    "node_rollups": _view("node_rollups", node_rollups_select(ALL)),
    "node_sweep": _view("node_sweep", node_sweep_select(ALL)),
}
