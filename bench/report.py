"""How long the full report takes on a large store, on embedded chDB.

Builds a store with N request rows (default 10 million) generated inside ClickHouse with
INSERT ... SELECT FROM numbers() — five scenarios A–E, concurrency 1/4/8/16/32, three repetitions,
CHUNKS content chunks of 4 tokens per request — and, per node, 15 steps of 60 s with 8 GPUs sampled
at SAMPLE_HZ (utilisation, power, memory, energy counter) — then times `report` (SQL and rendering) in
every format, warm, best of several runs: the all-runs report and a one-run report. The steps' results are
kept first (collector/kept.py, as the collector keeps them when a step ends; --no-keep: every figure
computed from the rows, as before). Targets: all runs under 2 s, one run under 0.2 s.

    .venv/bin/python bench/report.py [--rows 10000000] [--chunks 8] [--sample-hz 10] [--store chdb:///tmp/sb-bench]
                                     [--no-keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import time
from pathlib import Path

from siliconbench.collector import digests, kept
from siliconbench.collector.prices import ensure_prices
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection, parse_slo
from siliconbench.collector.schema import DEVICE_SAMPLES, KEPT, NODES, REQUESTS, RUNS, STEPS, Table
from siliconbench.collector.store import Store

SCENARIOS = (("A", "p5.48xlarge", 120, 8), ("B", "p4d.24xlarge", 280, 18), ("C", "g6e.48xlarge", 350, 22),
             ("D", "trn2.48xlarge", 150, 10), ("E", "inf2.48xlarge", 200, 14))
CONCURRENCY = (1, 4, 8, 16, 32)
REPETITIONS = 3

# One row per number: scenario = n % 5; step = (n / 5) % 15 (concurrency x repetition). TTFT and ITL
# follow the scenario's profile with pseudo-random jitter (cityHash64), 1 in 1000 requests fails.
REQUESTS_SQL = """
INSERT INTO {db}.requests ({columns})
SELECT 'bench-' || toString(s) AS run_id, 'node-' || toString(s) AS agent_id, toString(number) AS request_id,
       step, [1, 4, 8, 16, 32][step % 5 + 1] AS concurrency, intDiv(step, 5) AS repetition,
       toDateTime64('2026-03-01 00:00:00', 9, 'UTC') + toIntervalMicrosecond(intDiv(number, 5) * 50) AS start_time,
       if(failed, -1, ttft) AS ttft_ns,
       if(failed, 1000000, ttft + {chunks:UInt32} * itl * 4 + 1000000) AS e2e_ns,
       if(failed, [], arrayMap(i -> ttft + i * (itl * 4 + toInt64(cityHash64(number, i) % 2000000)), range({chunks:UInt32}))),
       if(failed, [], arrayResize([toUInt32(4)], {chunks:UInt32}, toUInt32(4))),
       512, if(failed, 0, {chunks:UInt32} * 4), false, if(failed, '', 'length'), if(failed, 500, 200),
       if(failed, 'timeout', ''), '', 0,
       '', 0, 0, 0, [], 0, 0,  -- model, first reasoning/answer/tool-call chunk, kinds, tool calls: plain answers
       '', 0, 0, -1, '', '', '',  -- session, turn, cached tokens expected and reported, agent graph: none
       {chunks:UInt32} * 4,    -- max_tokens: what a successful request returns
       0, 0  -- trace line and offset: no trace
FROM (
    SELECT number, number % 5 AS s, toUInt32(intDiv(number, 5) % 15) AS step, number % 1000 = 999 AS failed,
           toInt64([120, 280, 350, 150, 200][s + 1] * 1000000 + cityHash64(number) % 30000000) AS ttft,
           toInt64([8, 18, 22, 10, 14][s + 1] * 1000000) AS itl
    FROM numbers({rows:UInt64})
)
SETTINGS max_insert_threads = 2
"""

STEP_S = 60
GPUS = 8
# The plan each run states: its steps, and the SLO its goodput is counted against (kept with its steps' results).
PLAN = '{"concurrency": [1, 4, 8, 16, 32], "repetitions": 3, "slo": {"ttft_ms": 300, "tpot_ms": 5}}'
OTHER_SLO = ("ttft_ms=250", "tpot_ms=5")

# 15 consecutive steps of STEP_S per node, from the same origin as the requests.
STEPS_SQL = """
INSERT INTO {db}.steps ({columns})
SELECT 'bench-' || toString(s), 'node-' || toString(s), step, [1, 4, 8, 16, 32][step % 5 + 1], intDiv(step, 5),
       toDateTime64('2026-03-01 00:00:00', 9, 'UTC') + toIntervalSecond(step * {step_s:UInt32}),
       toDateTime64('2026-03-01 00:00:00', 9, 'UTC') + toIntervalSecond((step + 1) * {step_s:UInt32}),
       0, 'closed', 0, 0, 0, false, 0,  -- block size: unknown
       0, 0, 0, 0, -1, 'ok',  -- the verdict's evidence (core/verdict.py): none measured, ok
       '', 0, 0, 0, ''  -- no trace
FROM (SELECT number % 5 AS s, toUInt32(intDiv(number, 5)) AS step FROM numbers(75))
"""

# GPUS devices per node read at `hz` through all 15 steps: four metrics a reading, the energy counter rising
# at 600 W.
SAMPLES_SQL = """
INSERT INTO {db}.device_samples ({columns})
SELECT 'bench-' || toString(s), 'node-' || toString(s),
       toDateTime64('2026-03-01 00:00:00', 9, 'UTC') + toIntervalMicrosecond(intDiv(tick * 1000000, {hz:UInt32})),
       'nvml', toString(g), m.1, m.2
FROM (SELECT number % 5 AS s, intDiv(number, 5) % {gpus:UInt32} AS g, intDiv(number, 5 * {gpus:UInt32}) AS tick
      FROM numbers(5 * {gpus:UInt32} * 15 * {step_s:UInt32} * {hz:UInt32}))
ARRAY JOIN [('gpu_util_pct', toFloat64(50 + cityHash64(s, g, tick) % 50)),
            ('power_w', toFloat64(500 + cityHash64(g, tick) % 200)),
            ('mem_used_bytes', 7e10),
            ('energy_mj', tick * 600000.0 / {hz:UInt32})] AS m
SETTINGS max_insert_threads = 2
"""


def build(store: Store, rows: int, chunks: int, sample_hz: int) -> float:
    now = dt.datetime.now(dt.timezone.utc)
    for i, (name, itype, _, _) in enumerate(SCENARIOS):
        agent = f"node-{i}"
        store.insert("nodes", [NODES.row(agent_id=agent, node_name=agent, instance_type=itype, accelerator_kind="nvidia",
                                         accelerator_count=8, accelerator_model="bench", agent_version="bench",
                                         driver_version="", seen_at=now)], f"bench/n/{i}")
        store.insert("runs", [RUNS.row(run_id=f"bench-{i}", agent_id=agent, phase=phase, time=now,
                                       target_url="http://bench", model="bench-model", simulated=True, target_version="",
                                       scenario=name, config_json=PLAN if phase == "start" else "", outcome=outcome,
                                       outcome_detail="", requests_sent=0, trace_file="", trace_bad_lines=0)
                              for phase, outcome in (("start", ""), ("end", "complete"))], f"bench/r/{i}")
    t0 = time.perf_counter()
    store.client().command(_insert_sql(store, REQUESTS_SQL, REQUESTS), parameters={"rows": rows, "chunks": chunks})
    # The rows carry no batch ids and arrive in many blocks, where the view keeps one digest per batch:
    # rebuilt from the rows, as the collector does after a crash, each step's rows are one batch.
    digests.repair(store)
    if sample_hz:
        for sql, table in ((STEPS_SQL, STEPS), (SAMPLES_SQL, DEVICE_SAMPLES)):
            store.client().command(_insert_sql(store, sql, table),
                                   parameters={"hz": sample_hz, "gpus": GPUS, "step_s": STEP_S})
    return time.perf_counter() - t0


def _insert_sql(store: Store, sql: str, table: Table) -> str:
    """`sql` with the store's database and the table's declared columns, in order, put in."""
    return store.sql(sql).replace("{columns}", ", ".join(table.names))


def timed(fn, repeat: int) -> tuple[float, float]:
    """The best and the median of `repeat` calls (s)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per request (4 tokens each)")
    parser.add_argument("--sample-hz", type=int, default=10,
                        help=f"device readings per second ({GPUS} GPUs per node, 4 metrics each); 0: none")
    parser.add_argument("--store", default="chdb:///tmp/siliconbench-bench-report")
    parser.add_argument("--repeat", type=int, default=9, help="times each report is built: its best and median are shown")
    parser.add_argument("--keep", action="store_true", help="reuse the store if it already holds --rows rows")
    parser.add_argument("--no-keep", action="store_true", help="drop the kept step results: compute from the rows")
    args = parser.parse_args()

    path = Path(args.store.removeprefix("chdb://"))
    store = Store.open(args.store)
    have = store.query("SELECT count() FROM {db}.requests").result_rows[0][0]
    build_s = None
    if not (args.keep and have == args.rows):
        store.close()
        shutil.rmtree(path, ignore_errors=True)
        store = Store.open(args.store)
        build_s = build(store, args.rows, args.chunks, args.sample_hz)
    ensure_prices(store)
    keeping = None
    if args.no_keep:
        for name in KEPT:  # every kept table: kept_timelines stands for a node's kept rows
            store.command(f"TRUNCATE TABLE {{db}}.{name}")
    else:
        keeping = kept.keep_due(store)
    options = Options()  # the runs' own SLO (PLAN), as a nightly report reads them
    rows = []
    for what, selection in (("all runs: 5 scenarios x 5 concurrencies x 3 reps", Selection()),
                            ("one run: bench-2, 15 steps", Selection(runs=("bench-2",)))):
        build_report(store, selection, options)  # warm: first query plans, caches
        rows.append((f"build_report, {what}",
                     timed(lambda selection=selection: build_report(store, selection, options), args.repeat)))
        for fmt, render in RENDERERS.items():
            rows.append((f"  report --format {fmt} (SQL + render)",
                         timed(lambda render=render, selection=selection:
                                 render.report(build_report(store, selection, options)), args.repeat)))
    targets = (("all runs", rows[:len(rows) // 2], 2.0), ("one run", rows[len(rows) // 2:], 0.2))
    other = Options(slo=parse_slo(list(OTHER_SLO)))  # goodput under another SLO: counted from the rows
    for what, selection in (("all runs", Selection()), ("one run", Selection(runs=("bench-2",)))):
        build_report(store, selection, other)
        rows.append((f"build_report, {what}, --slo {' '.join(OTHER_SLO)} (not the runs' own)",
                     timed(lambda selection=selection: build_report(store, selection, other), args.repeat)))
    gaps = store.query("SELECT sum(gaps) FROM {db}.request_digests FINAL").result_rows[0][0]
    samples = store.query("SELECT count() FROM {db}.device_samples").result_rows[0][0]
    print(f"store {args.store}: {args.rows:,} request rows, {gaps:,} inter-chunk gaps, {samples:,} device samples"
          + (f", built in {build_s:.1f} s (INSERT ... SELECT FROM numbers(), digests rebuilt from the rows)" if build_s else ""))
    if keeping is not None and keeping.steps:
        print(f"kept the results of {keeping.steps} steps and the device figures of {keeping.nodes} nodes in "
              f"{keeping.seconds:.1f} s ({keeping.seconds / keeping.steps:.2f} s per step of "
              f"{args.rows // keeping.steps:,} requests)")
    print(f"{'what':76s} {'best of ' + str(args.repeat):>12s} {'median':>10s}")
    for name, (best, median) in rows:
        print(f"{name:76s} {best:10.3f} s {median:8.3f} s")
    if args.sample_hz:
        energy = store.query("SELECT min(energy_j), max(energy_j), groupUniqArray(energy_method) FROM {db}.node_rollups"
                             " WHERE startsWith(run_id, 'bench-')").result_rows[0]
        print(f"node energy per step: {energy[0]:,.0f}..{energy[1]:,.0f} J by {', '.join(energy[2])} "
              f"(expected {GPUS * 600 * STEP_S:,} J = {GPUS} GPUs x 600 W x {STEP_S} s)")
    for what, part, target in targets:
        worst = max(median for _, (_, median) in part)
        print(f"{what}: target < {target:g} s {'met' if worst < target else 'MISSED'} (slowest median {worst:.3f} s)")


if __name__ == "__main__":
    main()
