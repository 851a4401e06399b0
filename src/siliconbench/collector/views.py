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

Views (database `siliconbench`; filter with WHERE run_id = '...'; the per-step and device ones are
collector/step_views.py's and device_views.py's SELECTs, which a report runs filtered to its runs):
  step_rollups                 per run x node x step: means, throughput (from the digests)
  step_kept                    the kept step results (collector/kept.py) that still hold; their distribution
                               states are AggregateFunction columns: read them with quantilesIfMerge
  step_figures(ttft_ms=, ...)  per step: exact percentiles, steady state, dispatch, goodput, kept where they
                               hold, else computed from the step's rows now; `kept` says which
  step_percentiles             per run x node x step: exact percentiles [p50, p90, p95, p99], from every row
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

Kept results: once a step is over and its rows are complete, the collector computes its figures from
its rows once and keeps them (collector/kept.py: kept_steps, kept_answers; once its run ended, the
device, node and first-request figures: kept_devices, kept_nodes, kept_models). Each view reads kept
rows only while they were computed from as many rows (samples) as the step (node) has now, and
computes the rest from the rows, so a late batch is never missed; a report's cost follows the steps
it shows, not the rows the store holds.

Percentiles: one definition everywhere (the agent's console, the single-run report, the fleet
report): exact, the value at 0-based rank floor(q x n) of the n sorted values, no interpolation
(ClickHouse quantileExact; agent/selfmon.percentile). The single-run report used ClickHouse's
`quantiles` (reservoir sampling of at most 8,192 values, interpolated): a step's ITL percentiles over
more gaps than that were sampled and changed from one report to the next. Exact percentiles read the
step's raw rows (8 bytes per gap: a step of 1M gaps needs 8 MB) once, when the step is kept; means and
counts still come from the sums per step and batch kept by a materialized view (`request_digests`,
read FINAL). Energy per device (`step_energy`): the NVML energy counter at the step's end minus the counter at its start, each interpolated linearly between
the readings on either side of the instant (the agent reads the counter at every step boundary, so
those readings are milliseconds apart). Without readings on both sides of both boundaries: the
counter's rate inside the step x step duration ("energy counter (rate inside the step)"), else mean
power x step duration ("integrated power"); Neuron devices report no power, so no energy.
"""

from __future__ import annotations

from siliconbench.collector.formulas import REQUEST_FIGURES
from siliconbench.collector.device_views import DEVICE_VIEWS
from siliconbench.collector.load_view import STEP_LOAD
from siliconbench.collector.server_views import COLUMNS as SERVER_COLUMNS, STEP_SERVER
from siliconbench.collector.step_views import SLO_PARAMS, STEADY_COLUMNS, STEP_VIEWS
from siliconbench.collector.step_sql import PERCENTILES, goodput_select, steady_select


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

# Figures summarised across repetitions: the median, with min and max as the spread.
SWEEP_SCALARS = ("requests", "errors", "ok_requests", "tokens_out", "tokens_in", "wall_s", "ttft_mean_ms",
                  "itl_mean_ms", "itl_token_mean_ms", "tokens_per_chunk", "tpot_mean_ms", "e2e_mean_ms",
                  "output_tps", "total_tps", "rps", "good_requests", "goodput_rps", "goodput_output_tps",
                  "goodput_total_tps", "mean_in_flight", "sent_rps", "dispatch_mean_ms", "dispatch_p99_ms",
                  "prefix_cache_hit_rate", *STEADY_COLUMNS, *SERVER_COLUMNS)
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


VIEWS: dict[str, str] = {
    **{name: sql for name, sql in STEP_VIEWS.items() if name != "step_results"},
    "step_percentiles": STEP_PERCENTILES,
    "step_goodput": STEP_GOODPUT,
    "step_server": STEP_SERVER,
    "step_load": STEP_LOAD,
    "step_steady": STEP_STEADY,
    "step_results": STEP_VIEWS["step_results"],
    "sweep_results": SWEEP_RESULTS,
    **DEVICE_VIEWS,
}
