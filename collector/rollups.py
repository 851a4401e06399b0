"""Rollups as ClickHouse SQL. Percentiles are computed where the data is; Python only renders.

Definitions (DESIGN §3), per step of a run, over successful requests (error_class = ''):
  TTFT      = ttft_ns (first content-bearing chunk)
  ITL       = gaps between consecutive content-bearing chunks (chunk-weighted)
  ITL/token = each gap divided by the tokens its chunk carried
  TPOT      = (e2e_ns - ttft_ns) / (output_tokens - 1), requests with > 1 output token
  E2E       = e2e_ns
  output tok/s = sum(output_tokens) / (last request end - first request start)
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.errors import RunNotFound
from collector.store import Store

QUANTILES = (0.5, 0.9, 0.99)

STEP_ROLLUP_SQL = """
WITH error_class = '' AS ok,
     arrayPopFront(arrayDifference(chunk_offset_ns)) AS gaps,
     arrayPopFront(chunk_tokens) AS gap_tokens
SELECT
    step,
    any(concurrency) AS concurrency,
    any(repetition) AS repetition,
    count() AS requests,
    countIf(NOT ok) AS errors,
    quantilesIf(0.5, 0.9, 0.99)(ttft_ns / 1e6, ok) AS ttft_ms,
    quantilesArrayIf(0.5, 0.9, 0.99)(arrayMap(g -> g / 1e6, gaps), ok) AS itl_ms,
    quantilesArrayIf(0.5, 0.9, 0.99)(
        arrayMap((g, k) -> g / 1e6 / k, arrayFilter((g, k) -> k > 0, gaps, gap_tokens),
                 arrayFilter(k -> k > 0, gap_tokens)), ok) AS itl_per_token_ms,
    quantilesIf(0.5, 0.9, 0.99)((e2e_ns - ttft_ns) / 1e6 / (output_tokens - 1), ok AND output_tokens > 1) AS tpot_ms,
    quantilesIf(0.5, 0.9, 0.99)(e2e_ns / 1e6, ok) AS e2e_ms,
    sumIf(output_tokens, ok) AS tokens_out,
    (max(toUnixTimestamp64Nano(start_time) + e2e_ns) - min(toUnixTimestamp64Nano(start_time))) / 1e9 AS wall_s,
    if(wall_s > 0, tokens_out / wall_s, 0) AS output_tokens_per_s
FROM {db}.requests
WHERE run_id = {run_id:String}
GROUP BY step
ORDER BY step
"""

RUN_SQL = """
SELECT run_id, agent_id, time, target_url, model, simulated, target_version, scenario
FROM {db}.runs
WHERE run_id = {run_id:String} AND phase = 'start'
ORDER BY agent_id
LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    agent_id: str
    started: object
    target_url: str
    model: str
    simulated: bool
    target_version: str
    scenario: str


@dataclass(frozen=True, slots=True)
class StepRollup:
    step: int
    concurrency: int
    repetition: int
    requests: int
    errors: int
    ttft_ms: tuple[float, ...]
    itl_ms: tuple[float, ...]
    itl_per_token_ms: tuple[float, ...]
    tpot_ms: tuple[float, ...]
    e2e_ms: tuple[float, ...]
    output_tokens: int
    wall_s: float
    output_tokens_per_s: float


def run_info(store: Store, run_id: str) -> RunInfo:
    rows = store.query(RUN_SQL, {"run_id": run_id}).result_rows
    if not rows:
        raise RunNotFound(f"no run {run_id!r} in {store.location.shown}; `siliconbench-collector runs` lists the runs")
    return RunInfo(*rows[0])


def step_rollups(store: Store, run_id: str) -> list[StepRollup]:
    result = store.query(STEP_ROLLUP_SQL, {"run_id": run_id})
    return [StepRollup(*(tuple(v) if isinstance(v, list) else v for v in row)) for row in result.result_rows]
