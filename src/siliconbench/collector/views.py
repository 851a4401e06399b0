"""The rollups as ClickHouse views: what the reports read, and what SQL users query directly.

Created (replaced) at every start by `Store.ensure_schema`, so they follow the code. Every number is
defined in DESIGN §3; in short, per step of a run on one node (agent), over successful requests:

  TTFT        ttft_ns (send -> first content-bearing chunk)
  ITL         gaps between consecutive content-bearing chunks (chunk-weighted)
  ITL/token   each gap / the tokens its chunk carried
  TPOT        (e2e_ns - ttft_ns) / (output_tokens - 1), requests with > 1 output token
  E2E         e2e_ns (send -> last byte)
  wall_s      last request end - first request start (errors included; warm-up never stored)
  mean_in_flight  Σ E2E of successful requests / wall_s: the time-average of requests in flight
              (Little's L; a closed step at concurrency C reads C only if it ran at full concurrency throughout)
  output_tps  sum(output_tokens) / wall_s; total_tps (prompt + output) / wall_s; rps ok requests / wall_s
  steady_*    closed loop, over the step's steady part (all C streams in flight, STEP_STEADY): steady_s its
              length, steady_output_tps output tokens that arrived in it / steady_s; full_concurrency_share
              the share of wall_s at C in flight
  goodput     the same over requests that met every SLO given (core/slo.py GOODPUT_KEYS; a request's ITL is
              the mean of its gaps; TPOT of a 1-token request and ITL of a 1-chunk one count as 0)

The per-request figures (TTFT, E2E, TPOT, the gaps, ITL per token) are written once, in
collector/formulas.py; the digests (schema.DIGEST_SELECT) and goodput here use them by name.

Views (database `siliconbench`; filter with WHERE run_id = '...'):
  step_rollups                 per run x node x step: means, throughput (from the digests)
  step_percentiles             per run x node x step: exact percentiles [p50, p90, p95, p99]
  step_goodput(ttft_ms=, ttfa_ms=, itl_ms=, tpot_ms=, e2e_ms=)  per step: requests/tokens that met the SLOs (inf: no SLO)
  step_server                  per step: the server's own requests, prompt and output tokens, mean TTFT, ITL,
                               TPOT and E2E, prefix-cache hit rate (vLLM /metrics deltas; server_views.py)
  step_load                    per step: mode, offered rate, the verdict and its evidence (core/verdict.py),
                               dispatch delay and achieved send rate (collector/load_view.py)
  step_steady                  per step (closed loop): the share of its wall time with all C streams in flight,
                               and output tok/s and req/s over its steady part
  step_results(ttft_ms=, ttfa_ms=, itl_ms=, tpot_ms=, e2e_ms=)  step_rollups + percentiles + goodput + server figures + step_load
  sweep_results(ttft_ms=, ttfa_ms=, itl_ms=, tpot_ms=, e2e_ms=) per run x node x sweep point (mode, concurrency, rate_rps;
                                               collector/points.py): median of the repetitions, with min
                                               and max (`_min`, `_max`) as the spread
  step_energy                  per step x device with an energy counter: the counter at the step's start and
                               end (interpolated) and the joules between them
  device_rollups               per step x device: utilisation mean/p50/p90, peak memory, mean power, energy
  node_rollups                 per step x node: the same for the node, energy per output token
  node_sweep                   per run x node x sweep point: node figures, median of the repetitions

Percentiles: one definition everywhere (the agent's console, the single-run report, the fleet
report): exact, the value at 0-based rank floor(q x n) of the n sorted values, no interpolation
(ClickHouse quantileExact; agent/selfmon.percentile). The single-run report used ClickHouse's
`quantiles` (reservoir sampling of at most 8,192 values, interpolated): a step's ITL percentiles over
more gaps than that were sampled and changed from one report to the next. Exact percentiles read the
step's raw rows (8 bytes per gap: a step of 1M gaps needs 8 MB), as goodput already does; means and
counts still come from the sums per step and batch kept by a materialized view (`request_digests`,
read FINAL). Energy per device (`step_energy`): the NVML energy counter at the step's end minus the counter at its start, each interpolated linearly between
the readings on either side of the instant (the agent reads the counter at every step boundary, so
those readings are milliseconds apart). Without readings on both sides of both boundaries: the
counter's rate inside the step x step duration ("energy counter (rate inside the step)"), else mean
power x step duration ("integrated power"); Neuron devices report no power, so no energy.
"""

from __future__ import annotations

from siliconbench.collector.formulas import REQUEST_FIGURES
from siliconbench.collector.load_view import DISPATCHED, STATED, STEP_LOAD, STEP_STATED
from siliconbench.collector.server_views import COLUMNS as SERVER_COLUMNS, STEP_SERVER
from siliconbench.collector.schema import KEPT_STEPS
from siliconbench.collector.step_sql import (PERCENTILES, SPREAD_STATES, goodput_select, no_slo, steady_select,
                                               steps_select)
from siliconbench.core.slo import GOODPUT_KEYS

SLO_PARAMS = ("ttft_ms = {ttft_ms:Float64}, ttfa_ms = {ttfa_ms:Float64}, itl_ms = {itl_ms:Float64}, "
              "tpot_ms = {tpot_ms:Float64}, e2e_ms = {e2e_ms:Float64}")

STEP_ROLLUPS = """
CREATE OR REPLACE VIEW {db}.step_rollups AS
SELECT run_id, agent_id, step,
    toUInt32(any(concurrency)) AS concurrency, toUInt32(any(repetition)) AS repetition,
    sum(requests) AS requests, sum(errors) AS errors, sum(ok) AS ok_requests, sum(counted) AS counted_requests,
    sum(output_tokens) AS tokens_out, sum(prompt_tokens) AS tokens_in,
    (max(last_end_ns) - min(first_start_ns)) / 1e9 AS wall_s,
    sum(ttft_sum) / nullIf(sum(ok), 0) AS ttft_mean_ms,
    sum(itl_sum) / nullIf(sum(gaps), 0) AS itl_mean_ms,
    sum(itl_token_sum) / nullIf(sum(gaps), 0) AS itl_token_mean_ms,
    sum(gap_tokens) / nullIf(sum(gaps), 0) AS tokens_per_chunk,
    sum(tpot_sum) / nullIf(sum(tpot_n), 0) AS tpot_mean_ms,
    sum(e2e_sum) / nullIf(sum(ok), 0) AS e2e_mean_ms,
    if(wall_s > 0, tokens_out / wall_s, 0) AS output_tps,
    if(wall_s > 0, (tokens_out + tokens_in) / wall_s, 0) AS total_tps,
    if(wall_s > 0, ok_requests / wall_s, 0) AS rps,
    if(wall_s > 0, sum(e2e_sum) / 1e3 / wall_s, NULL) AS mean_in_flight
FROM {db}.request_digests FINAL
GROUP BY run_id, agent_id, step
"""

# Over every row, computed on the fly (collector/step_sql.py): for SQL users who want the computation itself;
# the reports read step_figures, where kept results stand in for it.
STEP_PERCENTILES = f"""
CREATE OR REPLACE VIEW {{db}}.step_percentiles AS
WITH {REQUEST_FIGURES}
SELECT run_id, agent_id, step,
    {PERCENTILES}
FROM {{db}}.requests
GROUP BY run_id, agent_id, step
"""

STEP_GOODPUT = f"CREATE OR REPLACE VIEW {{db}}.step_goodput AS {goodput_select('{db}.requests')}"

# Closed loop: the share of the step's wall time with all C streams in flight, and the throughput over
# its steady part. Requests in flight over time are the running sum of +1 at each send and -1 at each end
# (ends first at equal instants); the share is the time that sum is >= C over the step's span. The steady
# part runs from the first instant all C are in flight (the C-th send) to the last (the first end the
# step does not replace): a closed loop's re-send dips below C for microseconds inside it, its ramp and
# drain lie outside. Over it: output tokens whose chunks arrived inside (chunk_tokens at send +
# chunk_offset_ns) ÷ its length. Tokens, not requests: tokens arrive all along a stream, while a closed
# loop's streams start together and complete in bursts, so a count of requests ending in a part a round or
# two long is off by up to C. A step of 40 requests at concurrency 16 runs its third round with 8 streams:
# a third of it below full concurrency, its steady part the first two rounds.
# Each send or end is one sortable integer, its instant x 2 (+1 for a send, so ends sort first at equal
# instants): one sort of plain integers per step, several times faster than sorting (instant, +-1) tuples.
# The bounds come first (subquery b), then each stream's chunks are summed against them.
STEP_STEADY = f"CREATE OR REPLACE VIEW {{db}}.step_steady AS {steady_select('{db}.requests')}"

# Kept step results (collector/kept.py) that still hold: computed from as many rows as the step's digest counts.
STEP_KEPT = """
CREATE OR REPLACE VIEW {db}.step_kept AS
SELECT k.* FROM {db}.kept_steps AS k FINAL
INNER JOIN (SELECT run_id, agent_id, step, sum(requests) AS digested FROM {db}.request_digests FINAL
            GROUP BY run_id, agent_id, step) AS d
    ON k.run_id = d.run_id AND k.agent_id = d.agent_id AND k.step = d.step AND k.step_rows = d.digested
"""

# The steps with rows and no kept results that hold: computed on the fly from their rows only.
_NOT_KEPT = """(SELECT * FROM {db}.requests WHERE (run_id, agent_id, step) IN (
    SELECT run_id, agent_id, step FROM {db}.request_digests
    WHERE (run_id, agent_id, step) NOT IN (SELECT run_id, agent_id, step FROM {db}.step_kept)))"""

# Every step's figures from its rows (kept_steps' columns but the distribution states), `kept` saying which
# were read from kept results and which computed now; goodput under the run's own SLO where kept, under the
# one given where computed.
_FIGURE_COLUMNS = ", ".join(c for c in KEPT_STEPS.names if c not in SPREAD_STATES)
STEP_FIGURES = f"""
CREATE OR REPLACE VIEW {{db}}.step_figures AS
SELECT {_FIGURE_COLUMNS}, true AS kept FROM {{db}}.step_kept
UNION ALL
SELECT {_FIGURE_COLUMNS}, false AS kept FROM ({steps_select(_NOT_KEPT)})
"""

# The distribution states per step (reports/spread.py merges a sweep point's: quantilesIfMerge(levels.SPREAD_LEVELS)),
# kept or computed as step_figures.
_SPREAD_COLUMNS = ", ".join(("run_id", "agent_id", "step", *SPREAD_STATES))
STEP_SPREAD = f"""
CREATE OR REPLACE VIEW {{db}}.step_spread AS
SELECT {_SPREAD_COLUMNS} FROM {{db}}.step_kept
UNION ALL
SELECT {_SPREAD_COLUMNS} FROM ({no_slo(steps_select(_NOT_KEPT))})
"""

# Goodput of the kept steps whose run's SLO is not the one asked: from their rows.
_SLO_ASKED = " AND ".join(f"slo_{key} = {{{key}:Float64}}" for key in GOODPUT_KEYS)
_GOODPUT_ELSEWHERE = goodput_select(
    f"(SELECT * FROM {{db}}.requests WHERE (run_id, agent_id, step) IN "
    f"(SELECT run_id, agent_id, step FROM {{db}}.step_kept WHERE NOT ({_SLO_ASKED})))")

_STEP_COLUMNS = ("concurrency", "repetition", "requests", "errors", "ok_requests", "counted_requests", "tokens_out",
                 "tokens_in", "wall_s", "ttft_mean_ms", "itl_mean_ms", "itl_token_mean_ms", "tokens_per_chunk",
                 "tpot_mean_ms", "e2e_mean_ms", "output_tps", "total_tps", "rps", "mean_in_flight")
_PERCENTILE_COLUMNS = ("ttft_ms", "itl_ms", "itl_token_ms", "tpot_ms", "e2e_ms")
# closed loop only (NULL for open-loop steps): step_steady
_STEADY_COLUMNS = ("full_concurrency_share", "steady_s", "steady_output_tps")
_CLOSED_ONLY = ",\n    ".join(f"if(ifNull(l.mode, 'closed') = 'closed', f.{c}, NULL) AS {c}" for c in _STEADY_COLUMNS)

_GOOD = ("good_requests", "good_tokens_out", "good_tokens_total")
STEP_RESULTS = f"""
CREATE OR REPLACE VIEW {{db}}.step_results AS
SELECT run_id, agent_id, step, {', '.join(f'r.{c} AS {c}' for c in _STEP_COLUMNS)},
    {', '.join(f'f.{c} AS {c}' for c in _PERCENTILE_COLUMNS)},
    {', '.join(f'if({_SLO_ASKED.replace("slo_", "f.slo_")}, f.{c}, g.{c}) AS {c}' for c in _GOOD)},
    if(r.wall_s > 0, good_requests / r.wall_s, 0) AS goodput_rps,
    if(r.wall_s > 0, good_tokens_out / r.wall_s, 0) AS goodput_output_tps,
    if(r.wall_s > 0, good_tokens_total / r.wall_s, 0) AS goodput_total_tps,
    s.has_server_tokens, {', '.join(f's.{c} AS {c}' for c in SERVER_COLUMNS)}, s.prefix_cache_hit_rate,
    ifNull(l.has_step, 0) AS has_step, ifNull(l.mode, if(r.concurrency = 0, 'open', 'closed')) AS mode, ifNull(l.rate_rps, 0) AS rate_rps,
    l.agent_cpu_pct, l.loop_lag_p99_ms, ifNull(l.client_saturated, 0) AS client_saturated,
    {', '.join(f'l.{c} AS {c}' for c in STATED)},
    {', '.join(f'f.{c} AS {c}' for c in DISPATCHED)},
    {_CLOSED_ONLY},
    f.kept AS kept
FROM {{db}}.step_rollups AS r
LEFT JOIN {{db}}.step_figures({SLO_PARAMS}) AS f USING (run_id, agent_id, step)
LEFT JOIN ({_GOODPUT_ELSEWHERE}) AS g USING (run_id, agent_id, step)
LEFT JOIN {{db}}.step_server AS s USING (run_id, agent_id, step)
LEFT JOIN ({STEP_STATED}) AS l USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1
"""

# Figures summarised across repetitions: the median, with min and max as the spread.
SWEEP_SCALARS = ("requests", "errors", "ok_requests", "tokens_out", "tokens_in", "wall_s", "ttft_mean_ms",
                  "itl_mean_ms", "itl_token_mean_ms", "tokens_per_chunk", "tpot_mean_ms", "e2e_mean_ms",
                  "output_tps", "total_tps", "rps", "good_requests", "goodput_rps", "goodput_output_tps",
                  "goodput_total_tps", "mean_in_flight", "sent_rps", "dispatch_mean_ms", "dispatch_p99_ms",
                  "prefix_cache_hit_rate", *_STEADY_COLUMNS, *SERVER_COLUMNS)
SWEEP_ARRAYS = ("ttft_ms", "itl_ms", "itl_token_ms", "tpot_ms", "e2e_ms")


def _median_spread(name: str, each: str = "") -> str:
    return f"median{each}({name}) AS {name}, min{each}({name}) AS {name}_min, max{each}({name}) AS {name}_max"


SWEEP_RESULTS = f"""
CREATE OR REPLACE VIEW {{db}}.sweep_results AS
SELECT run_id, agent_id, mode, concurrency, rate_rps, count() AS repetitions, arraySort(groupArray(step)) AS steps,
    countIf(client_saturated) AS saturated_steps, countIf(NOT has_step) AS partial_steps,
    max(agent_cpu_pct) AS agent_cpu_pct_max, max(loop_lag_p99_ms) AS loop_lag_p99_ms_max,
    {(',' + chr(10) + '    ').join(_median_spread(n) for n in SWEEP_SCALARS)},
    {(',' + chr(10) + '    ').join(_median_spread(n, 'ForEach') for n in SWEEP_ARRAYS)}
FROM {{db}}.step_results({SLO_PARAMS})
GROUP BY run_id, agent_id, mode, concurrency, rate_rps
SETTINGS prefer_column_name_to_alias = 1
"""


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
_SAMPLES_IN_STEPS = """{db}.device_samples AS d
ASOF INNER JOIN (
    SELECT run_id, agent_id, step, concurrency, repetition, mode, rate_rps, start_time, end_time,
           (toUnixTimestamp64Nano(end_time) - toUnixTimestamp64Nano(start_time)) / 1e9 AS step_s
    FROM {db}.steps
) AS st ON d.run_id = st.run_id AND d.agent_id = st.agent_id AND d.time >= st.start_time"""

# Per step x device with an energy counter: the joules between the step's start and end instants.
STEP_ENERGY = f"""
CREATE OR REPLACE VIEW {{db}}.step_energy AS
SELECT st.run_id AS run_id, st.agent_id AS agent_id, st.step AS step, c.source AS source, c.device AS device,
    {_counter_at("start", "st.start_ns")},
    {_counter_at("end", "st.end_ns")},
    if(counter_end_mj >= counter_start_mj, (counter_end_mj - counter_start_mj) / 1e3, NULL) AS energy_j
FROM (
    SELECT run_id, agent_id, step, toUnixTimestamp64Nano(start_time) AS start_ns,
           toUnixTimestamp64Nano(end_time) AS end_ns
    FROM {{db}}.steps
) AS st
INNER JOIN (
    SELECT run_id, agent_id, source, device, arraySort(groupArray((toUnixTimestamp64Nano(time), value))) AS points
    FROM {{db}}.device_samples
    WHERE metric = 'energy_mj'
    GROUP BY run_id, agent_id, source, device
) AS c ON st.run_id = c.run_id AND st.agent_id = c.agent_id
"""

DEVICE_ROLLUPS = f"""
CREATE OR REPLACE VIEW {{db}}.device_rollups AS
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
FROM {_SAMPLES_IN_STEPS}
LEFT JOIN {{db}}.step_energy AS b
    ON b.run_id = st.run_id AND b.agent_id = st.agent_id AND b.step = st.step AND b.source = d.source
       AND b.device = d.device
WHERE d.time <= st.end_time
  AND (d.source = 'nvml' OR (d.source = 'neuron' AND (startsWith(d.device, 'nc') OR startsWith(d.device, 'nd'))))
GROUP BY st.run_id, st.agent_id, st.step, st.concurrency, st.repetition, st.mode, st.rate_rps, st.step_s, d.source,
    d.device
"""

# Node figures: utilisation pooled over every accelerator sample (NVML GPUs; Neuron: NeuronCores only),
# memory and power summed over devices (Neuron memory from nd* devices), energy summed over devices.
NODE_ROLLUPS = f"""
CREATE OR REPLACE VIEW {{db}}.node_rollups AS
SELECT u.run_id AS run_id, u.agent_id AS agent_id, u.step AS step, u.concurrency AS concurrency,
    u.mode AS mode, u.rate_rps AS rate_rps, u.repetition AS repetition, u.step_s AS step_s, u.util_mean_pct AS util_mean_pct, u.util_pct AS util_pct,
    u.host_cpu_mean_pct AS host_cpu_mean_pct,
    e.devices AS devices, e.sources AS sources, e.mem_peak_bytes AS mem_peak_bytes,
    e.power_mean_w AS power_mean_w, e.energy_j AS energy_j, e.energy_method AS energy_method,
    r.tokens_out AS tokens_out,
    if(r.tokens_out > 0, e.energy_j / r.tokens_out, NULL) AS j_per_output_token
FROM (
    WITH metric IN ('gpu_util_pct', 'neuroncore_util_pct') AS is_util
    SELECT st.run_id AS run_id, st.agent_id AS agent_id, st.step AS step,
        st.concurrency AS concurrency, st.repetition AS repetition, st.mode AS mode, st.rate_rps AS rate_rps,
        st.step_s AS step_s, avgIf(value, is_util) AS util_mean_pct, quantilesIf(0.5, 0.9)(value, is_util) AS util_pct,
        avgIf(value, d.source = 'host' AND metric = 'cpu_util_pct') AS host_cpu_mean_pct
    FROM {_SAMPLES_IN_STEPS}
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
    FROM {{db}}.device_rollups
    GROUP BY run_id, agent_id, step
    SETTINGS prefer_column_name_to_alias = 1
) AS e USING (run_id, agent_id, step)
LEFT JOIN {{db}}.step_rollups AS r USING (run_id, agent_id, step)
SETTINGS join_use_nulls = 1
"""

NODE_SWEEP = """
CREATE OR REPLACE VIEW {db}.node_sweep AS
SELECT run_id, agent_id, mode, concurrency, rate_rps, count() AS repetitions,
    median(util_mean_pct) AS util_mean_pct, medianForEach(util_pct) AS util_pct,
    median(host_cpu_mean_pct) AS host_cpu_mean_pct, any(devices) AS devices,
    max(mem_peak_bytes) AS mem_peak_bytes, median(power_mean_w) AS power_mean_w,
    median(energy_j) AS energy_j, min(energy_j) AS energy_j_min, max(energy_j) AS energy_j_max,
    median(j_per_output_token) AS j_per_output_token, any(energy_method) AS energy_method
FROM {db}.node_rollups
GROUP BY run_id, agent_id, mode, concurrency, rate_rps
SETTINGS prefer_column_name_to_alias = 1
"""

VIEWS: dict[str, str] = {
    "step_rollups": STEP_ROLLUPS,
    "step_kept": STEP_KEPT,
    "step_figures": STEP_FIGURES,
    "step_spread": STEP_SPREAD,
    "step_percentiles": STEP_PERCENTILES,
    "step_goodput": STEP_GOODPUT,
    "step_server": STEP_SERVER,
    "step_load": STEP_LOAD,
    "step_steady": STEP_STEADY,
    "step_results": STEP_RESULTS,
    "sweep_results": SWEEP_RESULTS,
    "step_energy": STEP_ENERGY,
    "device_rollups": DEVICE_ROLLUPS,
    "node_rollups": NODE_ROLLUPS,
    "node_sweep": NODE_SWEEP,
}
