"""The ClickHouse schema, version 1. Created idempotently at start-up (CREATE ... IF NOT EXISTS).

Every table that agents write is a MergeTree with a deduplication window, so that a batch
replayed with the same insert_deduplication_token (its batch_id) is stored once. On a
cluster, use ReplicatedMergeTree for the same tables (deduplication is on by default there).
"""

from __future__ import annotations

SCHEMA_VERSION = 1  # still unreleased: v1 grows in place until the first release
_DEDUP = "SETTINGS non_replicated_deduplication_window = 100000"

TABLES: dict[str, str] = {
    "nodes": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.nodes (
            agent_id LowCardinality(String), node_name LowCardinality(String),
            instance_type LowCardinality(String), accelerator_kind LowCardinality(String),
            accelerator_count UInt32, accelerator_model LowCardinality(String),
            agent_version String, driver_version String, seen_at DateTime64(9, 'UTC')
        ) ENGINE = ReplacingMergeTree(seen_at) ORDER BY agent_id""",
    "runs": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.runs (
            run_id String, agent_id LowCardinality(String), phase Enum8('start' = 1, 'end' = 2),
            time DateTime64(9, 'UTC'), target_url String, model LowCardinality(String), simulated Bool,
            target_version String, scenario LowCardinality(String), config_json String
        ) ENGINE = MergeTree ORDER BY (run_id, agent_id, phase) {_DEDUP}""",
    "steps": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.steps (
            run_id String, agent_id LowCardinality(String), step UInt32, concurrency UInt32, repetition UInt32,
            start_time DateTime64(9, 'UTC'), end_time DateTime64(9, 'UTC'), requests UInt32,
            mode LowCardinality(String), rate_rps Float64, agent_cpu_pct Float64, loop_lag_p99_ms Float64,
            client_saturated Bool
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
            dispatch_delay_ns Int64 COMMENT 'send time - scheduled time'
        ) ENGINE = MergeTree ORDER BY (run_id, agent_id, step, request_id) {_DEDUP}""",
    "device_samples": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.device_samples (
            run_id String, agent_id LowCardinality(String), time DateTime64(9, 'UTC'),
            source LowCardinality(String), device LowCardinality(String), metric LowCardinality(String),
            value Float64
        ) ENGINE = MergeTree ORDER BY (agent_id, time, source, device, metric) {_DEDUP}""",
    "server_metrics": f"""
        CREATE TABLE IF NOT EXISTS {{db}}.server_metrics (
            run_id String, agent_id LowCardinality(String), step UInt32, name LowCardinality(String),
            labels String, start_value Float64, end_value Float64
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
    "schema_version": """
        CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32, applied_at DateTime64(9, 'UTC'))
        ENGINE = ReplacingMergeTree(applied_at) ORDER BY version""",
}

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
    "run_nodes": ["run_id", "agent_id", "node_name", "instance_type", "scenario", "role", "plan_json", "selector",
                  "start_at", "created"],
    "run_progress": ["run_id", "agent_id", "state", "step", "steps_total", "requests_done", "output_tokens_per_s",
                     "errors", "detail", "time"],
}
