"""From wire messages to table rows, checking each message against the contract first.

`rows_of` raises InvalidBatch naming the first offending field; a batch is stored whole or
not at all from the agent's point of view (it is acked only after every table's insert).
"""

from __future__ import annotations

import math
import time

from collector.errors import InvalidBatch
from siliconbench.telemetry.v1 import telemetry_pb2 as pb

MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_CHUNKS = 1_000_000
# Event times must lie between 2020 and one day ahead of the collector's clock.
_EARLIEST_NS = 1_577_836_800 * 10**9
_AHEAD_NS = 86_400 * 10**9
_PHASES = {pb.PHASE_START: "start", pb.PHASE_END: "end"}


def _text(value: str, field: str, limit: int = MAX_ID_CHARS) -> str:
    if len(value) > limit:
        raise InvalidBatch(f"{field} is {len(value)} characters long; the limit is {limit}")
    return value


def _time(ns: int, field: str, now_ns: int) -> int:
    if not _EARLIEST_NS <= ns <= now_ns + _AHEAD_NS:
        raise InvalidBatch(f"{field}={ns} is not a plausible UTC time in nanoseconds (clock wrong?)")
    return ns


def check_hello(hello: pb.Hello) -> None:
    if not hello.agent_id:
        raise InvalidBatch("Hello.agent_id is empty")
    for field in ("agent_id", "node_name", "instance_type", "accelerator_kind", "accelerator_model",
                  "agent_version", "driver_version"):
        _text(getattr(hello, field), f"Hello.{field}")


def hello_row(hello: pb.Hello) -> list:
    return [hello.agent_id, hello.node_name, hello.instance_type, hello.accelerator_kind or "none",
            hello.accelerator_count, hello.accelerator_model, hello.agent_version, hello.driver_version,
            time.time_ns()]


def rows_of(batch: pb.Batch, agent_id: str) -> dict[str, list[list]]:
    """Rows per table for one batch; raises InvalidBatch on the first broken rule."""
    now = time.time_ns()
    if not batch.batch_id:
        raise InvalidBatch(f"batch {batch.seq} has no batch_id")
    _text(batch.batch_id, "Batch.batch_id")
    return {
        "runs": [_run_row(r, agent_id, now) for r in batch.runs],
        "steps": [_step_row(s, agent_id, now) for s in batch.steps],
        "requests": [_request_row(r, agent_id, now) for r in batch.requests],
        "device_samples": [row for s in batch.samples for row in _sample_rows(s, agent_id, now)],
        "server_metrics": [_server_metric_row(m, agent_id) for m in batch.server_metrics],
    }


def _run_row(r: pb.RunEvent, agent_id: str, now: int) -> list:
    if r.phase not in _PHASES:
        raise InvalidBatch(f"RunEvent {r.run_id!r} has no phase")
    return [_text(r.run_id, "RunEvent.run_id"), agent_id, _PHASES[r.phase], _time(r.time_unix_ns, "RunEvent.time_unix_ns", now),
            _text(r.target_url, "RunEvent.target_url", MAX_TEXT_CHARS), _text(r.model, "RunEvent.model"), r.simulated,
            _text(r.target_version, "RunEvent.target_version"), _text(r.scenario, "RunEvent.scenario"),
            _text(r.config_json, "RunEvent.config_json", 65536)]


def _step_row(s: pb.StepEvent, agent_id: str, now: int) -> list:
    start = _time(s.start_unix_ns, "StepEvent.start_unix_ns", now)
    end = _time(s.end_unix_ns, "StepEvent.end_unix_ns", now)
    if end < start:
        raise InvalidBatch(f"step {s.step} of run {s.run_id!r} ends before it starts")
    for field in ("rate_rps", "agent_cpu_pct", "loop_lag_p99_ms"):
        _finite(getattr(s, field), f"StepEvent.{field}")
    return [_text(s.run_id, "StepEvent.run_id"), agent_id, s.step, s.concurrency, s.repetition, start, end, s.requests,
            _text(s.mode, "StepEvent.mode"), s.rate_rps, s.agent_cpu_pct, s.loop_lag_p99_ms, s.client_saturated]


def _request_row(r: pb.RequestRecord, agent_id: str, now: int) -> list:
    offsets = r.chunk_offset_ns
    tokens = r.chunk_tokens
    where = f"request {r.request_id!r}"
    if len(offsets) != len(tokens):
        raise InvalidBatch(f"{where}: {len(offsets)} chunk offsets but {len(tokens)} chunk token counts")
    if len(offsets) > MAX_CHUNKS:
        raise InvalidBatch(f"{where}: {len(offsets)} chunks; the limit is {MAX_CHUNKS}")
    if r.e2e_ns < 0 or r.ttft_ns < -1:
        raise InvalidBatch(f"{where}: negative duration (ttft_ns={r.ttft_ns}, e2e_ns={r.e2e_ns})")
    if offsets:
        if r.ttft_ns != offsets[0]:
            raise InvalidBatch(f"{where}: ttft_ns={r.ttft_ns} differs from the first chunk's offset {offsets[0]}")
        if any(b < a for a, b in zip(offsets, offsets[1:])) or offsets[0] < 0 or offsets[-1] > r.e2e_ns:
            raise InvalidBatch(f"{where}: chunk offsets are not ordered within [0, e2e_ns]")
    elif r.ttft_ns != -1:
        raise InvalidBatch(f"{where}: ttft_ns={r.ttft_ns} but no chunk arrived")
    return [_text(r.run_id, "RequestRecord.run_id"), agent_id, _text(r.request_id, "RequestRecord.request_id"),
            r.step, r.concurrency, r.repetition, _time(r.start_unix_ns, "RequestRecord.start_unix_ns", now),
            r.ttft_ns, r.e2e_ns, list(offsets), list(tokens), r.prompt_tokens, r.output_tokens, r.tokens_counted,
            _text(r.finish_reason, "RequestRecord.finish_reason"), min(r.http_status, 65535),
            _text(r.error_class, "RequestRecord.error_class"), _text(r.error_message, "RequestRecord.error_message", MAX_TEXT_CHARS),
            r.dispatch_delay_ns]


def _server_metric_row(m: pb.ServerMetric, agent_id: str) -> list:
    return [_text(m.run_id, "ServerMetric.run_id"), agent_id, m.step, _text(m.name, "ServerMetric.name"),
            _text(m.labels, "ServerMetric.labels", MAX_TEXT_CHARS), _finite(m.start_value, "ServerMetric.start_value"),
            _finite(m.end_value, "ServerMetric.end_value")]


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidBatch(f"{field} is {value}; only finite numbers are stored")
    return value


def _sample_rows(s: pb.DeviceSample, agent_id: str, now: int) -> list[list]:
    t = _time(s.time_unix_ns, "DeviceSample.time_unix_ns", now)
    run_id = _text(s.run_id, "DeviceSample.run_id")
    source = _text(s.source, "DeviceSample.source")
    device = _text(s.device, "DeviceSample.device")
    rows = []
    for metric, value in s.values.items():
        _finite(value, f"sample {source}/{device} metric {metric!r}")
        rows.append([run_id, agent_id, t, source, device, _text(metric, "DeviceSample metric name"), value])
    return rows
