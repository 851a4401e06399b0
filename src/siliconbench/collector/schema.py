"""The ClickHouse schema, version 1. Created idempotently at start-up (CREATE ... IF NOT EXISTS).

Every table that agents write carries the `batch_id` of the agent batch each row came in, with a
bloom-filter skip index on it: the collector merges batches from many agents into one insert per
table and, before inserting, drops the batches that table already holds (collector/group_insert.py),
so a replay is stored once whether it was first stored alone or merged. The tables also keep a
deduplication window, so an insert repeated with the same insert_deduplication_token is a no-op.
On a cluster, use ReplicatedMergeTree for the same tables (deduplication is on by default there).
"""

from __future__ import annotations

SCHEMA_VERSION = 1  # still unreleased: v1 grows in place until the first release
_DEDUP = "SETTINGS non_replicated_deduplication_window = 100000"
# The tables agents write: each row carries its batch's id, indexed so that "which of these batches
# does the table hold?" reads a few granules (added to v1 in place; MIGRATIONS adds it to older stores).
BATCHED = ("runs", "steps", "requests", "device_samples", "server_metrics")
BATCH_ID = "batch_id"
_BATCH_ID_COLUMN = ("batch_id String DEFAULT '' "
                    "COMMENT 'the agent batch that carried the row (replays are recognised by it)'")
_BATCH_ID_INDEX = "batch_id_idx batch_id TYPE bloom_filter(0.01) GRANULARITY 1"
_BATCH = f"{_BATCH_ID_COLUMN},\n            INDEX {_BATCH_ID_INDEX}"

# What the materialized view stores per insert block; also backfills a store created before it.
# Definitions are DESIGN §3 (see collector/views.py for the read side).
DIGEST_SELECT = """
    WITH arrayMap(g -> g / 1e6, arrayPopFront(arrayDifference(chunk_offset_ns))) AS gap_ms,
         arrayPopFront(chunk_tokens) AS gap_k,
         arrayMap((g, k) -> g / k, arrayFilter((g, k) -> k > 0, gap_ms, gap_k), arrayFilter(k -> k > 0, gap_k)) AS gap_token_ms
    SELECT run_id, agent_id, step, any(concurrency) AS concurrency, any(repetition) AS repetition,
        count() AS requests, countIf(error_class != '') AS errors, countIf(error_class = '') AS ok,
        countIf(error_class = '' AND tokens_counted) AS counted,
        sumIf(output_tokens, error_class = '') AS output_tokens, sumIf(prompt_tokens, error_class = '') AS prompt_tokens,
        min(toUnixTimestamp64Nano(start_time)) AS first_start_ns,
        max(toUnixTimestamp64Nano(start_time) + e2e_ns) AS last_end_ns,
        quantilesStateIf(0.5, 0.9, 0.95, 0.99)(ttft_ns / 1e6, error_class = '') AS ttft_state,
        sumIf(ttft_ns / 1e6, error_class = '') AS ttft_sum,
        quantilesStateIf(0.5, 0.9, 0.95, 0.99)(e2e_ns / 1e6, error_class = '') AS e2e_state,
        sumIf(e2e_ns / 1e6, error_class = '') AS e2e_sum,
        quantilesStateIf(0.5, 0.9, 0.95, 0.99)((e2e_ns - ttft_ns) / 1e6 / (output_tokens - 1),
                                                error_class = '' AND output_tokens > 1) AS tpot_state,
        sumIf((e2e_ns - ttft_ns) / 1e6 / (output_tokens - 1), error_class = '' AND output_tokens > 1) AS tpot_sum,
        countIf(error_class = '' AND output_tokens > 1) AS tpot_n,
        quantilesArrayStateIf(0.5, 0.9, 0.95, 0.99)(gap_ms, error_class = '') AS itl_state,
        quantilesArrayStateIf(0.5, 0.9, 0.95, 0.99)(gap_token_ms, error_class = '') AS itl_token_state,
        sumIf(arraySum(gap_ms), error_class = '') AS itl_sum,
        sumIf(arraySum(gap_token_ms), error_class = '') AS itl_token_sum,
        sumIf(length(gap_ms), error_class = '') AS gaps,
        sumIf(arraySum(gap_k), error_class = '') AS gap_tokens
    FROM {source}
    GROUP BY run_id, agent_id, step
    SETTINGS prefer_column_name_to_alias = 1"""

TABLES: dict[str, str] = {
    "nodes": """
        CREATE TABLE IF NOT EXISTS {db}.nodes (
            agent_id LowCardinality(String), node_name LowCardinality(String),
            instance_type LowCardinality(String), accelerator_kind LowCardinality(String),
            accelerator_count UInt32, accelerator_model LowCardinality(String),
            agent_version String, driver_version String, seen_at DateTime64(9, 'UTC')
        ) ENGINE = ReplacingMergeTree(seen_at) ORDER BY agent_id""",
    "runs": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.runs (
            run_id String, agent_id LowCardinality(String), phase Enum8('start' = 1, 'end' = 2),
            time DateTime64(9, 'UTC'), target_url String, model LowCardinality(String), simulated Bool,
            target_version String, scenario LowCardinality(String), config_json String,
            {_BATCH}
        ) ENGINE = MergeTree ORDER BY (run_id, agent_id, phase) {_DEDUP}""",
    "steps": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.steps (
            run_id String, agent_id LowCardinality(String), step UInt32, concurrency UInt32, repetition UInt32,
            start_time DateTime64(9, 'UTC'), end_time DateTime64(9, 'UTC'), requests UInt32,
            mode LowCardinality(String), rate_rps Float64, agent_cpu_pct Float64, loop_lag_p99_ms Float64,
            client_saturated Bool,
            {_BATCH}
        ) ENGINE = MergeTree ORDER BY (run_id, agent_id, step) {_DEDUP}""",
    "requests": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.requests (
            run_id String, agent_id LowCardinality(String), request_id String,
            step UInt32, concurrency UInt32, repetition UInt32,
            start_time DateTime64(9, 'UTC') COMMENT 'wall clock just before the request was sent',
            ttft_ns Int64 COMMENT 'first content-bearing chunk; -1 when none came',
            e2e_ns Int64 COMMENT 'last byte of the stream',
            chunk_offset_ns Array(Int64) COMMENT 'arrival of each content-bearing chunk after the send',
            chunk_tokens Array(UInt32) COMMENT 'tokens carried by each of those chunks',
            prompt_tokens UInt32, output_tokens UInt32, tokens_counted Bool,
            finish_reason LowCardinality(String), http_status UInt16,
            error_class LowCardinality(String), error_message String,
            dispatch_delay_ns Int64 COMMENT 'send time - scheduled time',
            {_BATCH}
        ) ENGINE = MergeTree ORDER BY (run_id, agent_id, step, request_id) {_DEDUP}""",
    "device_samples": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.device_samples (
            run_id String, agent_id LowCardinality(String), time DateTime64(9, 'UTC'),
            source LowCardinality(String), device LowCardinality(String), metric LowCardinality(String),
            value Float64,
            {_BATCH}
        ) ENGINE = MergeTree ORDER BY (agent_id, time, source, device, metric) {_DEDUP}""",
    "server_metrics": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.server_metrics (
            run_id String, agent_id LowCardinality(String), step UInt32, name LowCardinality(String),
            labels String, start_value Float64, end_value Float64,
            {_BATCH}
        ) ENGINE = MergeTree ORDER BY (run_id, agent_id, step, name, labels) {_DEDUP}""",
    "run_nodes": """
        CREATE TABLE IF NOT EXISTS {db}.run_nodes (
            run_id String, agent_id LowCardinality(String), node_name LowCardinality(String),
            instance_type LowCardinality(String), scenario LowCardinality(String),
            role Enum8('member' = 1, 'late' = 2), plan_json String, selector String,
            start_at DateTime64(9, 'UTC'), created DateTime64(9, 'UTC')
        ) ENGINE = ReplacingMergeTree(created) ORDER BY (run_id, agent_id)""",
    "run_progress": """
        CREATE TABLE IF NOT EXISTS {db}.run_progress (
            run_id String, agent_id LowCardinality(String),
            state Enum8('planned' = 1, 'running' = 2, 'finished' = 3, 'cancelled' = 4, 'failed' = 5),
            step UInt32, steps_total UInt32, requests_done UInt32, output_tokens_per_s Float64, errors UInt32,
            detail String, time DateTime64(9, 'UTC')
        ) ENGINE = ReplacingMergeTree(time) ORDER BY (run_id, agent_id)""",
    "prices": """
        CREATE TABLE IF NOT EXISTS {db}.prices (
            instance_type LowCardinality(String), region LowCardinality(String), kind LowCardinality(String),
            usd_per_hour Float64, currency LowCardinality(String), as_of String COMMENT 'date the price held, YYYY-MM[-DD]',
            accelerators String, accelerator_memory_gb Float64, confidence LowCardinality(String), source String,
            imported_at DateTime64(9, 'UTC')
        ) ENGINE = ReplacingMergeTree(imported_at) ORDER BY (instance_type, region, kind, as_of)""",
    # Per-step digests of `requests`, kept by a materialized view as rows arrive, so reports read
    # kilobytes of quantile states instead of every chunk of every request (see collector/views.py).
    "request_digests": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.request_digests (
            run_id String, agent_id LowCardinality(String), step UInt32,
            concurrency SimpleAggregateFunction(any, UInt32), repetition SimpleAggregateFunction(any, UInt32),
            requests SimpleAggregateFunction(sum, UInt64), errors SimpleAggregateFunction(sum, UInt64),
            ok SimpleAggregateFunction(sum, UInt64), counted SimpleAggregateFunction(sum, UInt64),
            output_tokens SimpleAggregateFunction(sum, UInt64), prompt_tokens SimpleAggregateFunction(sum, UInt64),
            first_start_ns SimpleAggregateFunction(min, Int64), last_end_ns SimpleAggregateFunction(max, Int64),
            ttft_state AggregateFunction(quantiles(0.5, 0.9, 0.95, 0.99), Float64), ttft_sum SimpleAggregateFunction(sum, Float64),
            e2e_state AggregateFunction(quantiles(0.5, 0.9, 0.95, 0.99), Float64), e2e_sum SimpleAggregateFunction(sum, Float64),
            tpot_state AggregateFunction(quantiles(0.5, 0.9, 0.95, 0.99), Float64), tpot_sum SimpleAggregateFunction(sum, Float64),
            tpot_n SimpleAggregateFunction(sum, UInt64),
            itl_state AggregateFunction(quantilesArray(0.5, 0.9, 0.95, 0.99), Array(Float64)),
            itl_token_state AggregateFunction(quantilesArray(0.5, 0.9, 0.95, 0.99), Array(Float64)),
            itl_sum SimpleAggregateFunction(sum, Float64), itl_token_sum SimpleAggregateFunction(sum, Float64),
            gaps SimpleAggregateFunction(sum, UInt64), gap_tokens SimpleAggregateFunction(sum, UInt64)
        ) ENGINE = AggregatingMergeTree ORDER BY (run_id, agent_id, step) {_DEDUP}""",
    "request_digests_mv": """
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.request_digests_mv TO {db}.request_digests AS """
        + DIGEST_SELECT.replace("{source}", "{db}.requests"),
    "schema_version": """
        CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32, applied_at DateTime64(9, 'UTC'))
        ENGINE = ReplacingMergeTree(applied_at) ORDER BY version""",
}

# Run at every start, after TABLES: bring a store created before a column was added up to date.
MIGRATIONS: list[str] = [
    stmt for table in BATCHED for stmt in (
        f"ALTER TABLE {{db}}.{table} ADD COLUMN IF NOT EXISTS {_BATCH_ID_COLUMN}",
        f"ALTER TABLE {{db}}.{table} ADD INDEX IF NOT EXISTS {_BATCH_ID_INDEX}",
    )
]

# Run once when the named table is created in a store that already holds requests.
BACKFILL: dict[str, str] = {
    "request_digests": "INSERT INTO {db}.request_digests " + DIGEST_SELECT.replace("{source}", "{db}.requests"),
}

# Columns by table, as Store.insert takes rows; the collector's ingest path adds BATCH_ID to BATCHED tables.
COLUMNS: dict[str, list[str]] = {
    "nodes": ["agent_id", "node_name", "instance_type", "accelerator_kind", "accelerator_count",
              "accelerator_model", "agent_version", "driver_version", "seen_at"],
    "runs": ["run_id", "agent_id", "phase", "time", "target_url", "model", "simulated", "target_version",
             "scenario", "config_json"],
    "steps": ["run_id", "agent_id", "step", "concurrency", "repetition", "start_time", "end_time", "requests",
              "mode", "rate_rps", "agent_cpu_pct", "loop_lag_p99_ms", "client_saturated"],
    "requests": ["run_id", "agent_id", "request_id", "step", "concurrency", "repetition", "start_time", "ttft_ns",
                 "e2e_ns", "chunk_offset_ns", "chunk_tokens", "prompt_tokens", "output_tokens", "tokens_counted",
                 "finish_reason", "http_status", "error_class", "error_message", "dispatch_delay_ns"],
    "device_samples": ["run_id", "agent_id", "time", "source", "device", "metric", "value"],
    "server_metrics": ["run_id", "agent_id", "step", "name", "labels", "start_value", "end_value"],
    "prices": ["instance_type", "region", "kind", "usd_per_hour", "currency", "as_of", "accelerators",
               "accelerator_memory_gb", "confidence", "source", "imported_at"],
    "run_nodes": ["run_id", "agent_id", "node_name", "instance_type", "scenario", "role", "plan_json", "selector",
                  "start_at", "created"],
    "run_progress": ["run_id", "agent_id", "state", "step", "steps_total", "requests_done", "output_tokens_per_s",
                     "errors", "detail", "time"],
}
